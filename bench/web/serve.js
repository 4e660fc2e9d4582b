// The bench workers' side of bench.js's request/response protocol: {id, type, ...} in,
// {id, ok, ...result} or {id, ok: false, error} out; a result's `out` buffer is transferred.
export function serve(handlers) {
  self.onmessage = async ({ data: msg }) => {
    try {
      const r = await handlers[msg.type](msg);
      self.postMessage({ id: msg.id, ok: true, ...r }, r.out ? [r.out] : []);
    } catch (e) {
      self.postMessage({ id: msg.id, ok: false, error: String(e?.message || e) });
    }
  };
}
