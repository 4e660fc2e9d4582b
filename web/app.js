// The page: UI only. Photos, settings, progress, the before/after view and downloads. All image
// work happens in workers (pool.js); this thread draws what they hand back.
//
// The entry point (index.html loads it): each concern is a module of ui/ (state.js what they
// share, settings.js, dom.js, settingspanel.js, facedialog.js, start.js, queue.js, view.js,
// restore.js, result.js, repair.js, offline.js, hook.js). Importing them binds their controls; this file
// then shows the settings and starts the engine.

import { state } from './ui/state.js';
import { showSettings } from './ui/settingspanel.js';
import { updateRestore } from './ui/queue.js';
import { renderItem } from './ui/view.js';
import { startEngine } from './ui/start.js';
import { registerServiceWorker } from './ui/offline.js';
import { installTestHook } from './ui/hook.js';
import { queryProblems } from './ui/settings.js';
import { toast } from './ui/dom.js';
// Modules imported for their controls alone (the dialog's buttons, Restore and Cancel, the format).
import './ui/facedialog.js';
import './ui/restore.js';
import './ui/result.js';

showSettings();
if (queryProblems.length) toast(queryProblems.join(' '), 'warning');
state.engineReady = startEngine();
state.engineReady.then(() => {
  renderItem();
  updateRestore();
}, () => {});

registerServiceWorker();
installTestHook();
