//! The built model manifest (`models/build/manifest.json`, written by `models/build.py`): which
//! models exist, which file holds each form, and the sha256 every byte is checked against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub models: Vec<ModelEntry>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub task: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scale: Option<u32>,
    #[serde(default)]
    pub ship: Option<String>,
    #[serde(default)]
    pub default: Option<bool>,
    #[serde(default)]
    pub denoise_partner: Option<String>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, Artifact>,
    /// How the model reaches the user: `first-visit`, `on-demand` (fetched when first needed),
    /// `catalog` (a download the user asks for) or `own` (the project's own, committed).
    #[serde(default)]
    pub delivery: Option<String>,
    #[serde(default)]
    pub license: Option<String>,
    /// A catalog model's architecture (`gfpgan`, `codeformer`, `onnx`).
    #[serde(default)]
    pub arch: Option<String>,
    /// CodeFormer's default fidelity weight.
    #[serde(default)]
    pub fidelity: Option<f32>,
    /// A catalog model's upstream file.
    #[serde(default)]
    pub download: Option<Download>,
    /// A denoise preset: upscaler `of` with its partner already mixed in at one strength.
    #[serde(default)]
    pub preset: Option<Preset>,
}

/// An upscaler's weights mixed with its denoise partner's at one strength, ahead of time: the
/// default strength then needs one file, which also compresses better than the two it replaces.
#[derive(Clone, Debug, Deserialize)]
pub struct Preset {
    pub of: String,
    pub denoise: f32,
}

/// The model files that make an upscaler at a denoise strength, and the strength to mix them at.
#[derive(Clone, Debug)]
pub struct Upscaler<'a> {
    pub model: &'a ModelEntry,
    pub partner: Option<&'a ModelEntry>,
    pub denoise: f32,
}

/// The published file of a catalog model: what is fetched and checked.
#[derive(Clone, Debug, Deserialize)]
pub struct Download {
    pub file: String,
    /// Exact size where it is published; else `approx_bytes` on the entry gives an idea.
    #[serde(default)]
    pub bytes: Option<u64>,
    pub sha256: String,
    pub urls: Vec<String>,
}

pub const CATALOG: &str = "catalog";

#[derive(Clone, Debug, Deserialize)]
pub struct Artifact {
    pub file: String,
    pub sha256: String,
    #[serde(default)]
    pub bytes: Option<u64>,
}

pub const DETECTION: &str = "face-detection";
pub const SUPER_RESOLUTION: &str = "super-resolution";
pub const FACE_RESTORATION: &str = "face-restoration";
/// Deblurring the whole photo at its own resolution (Unblur's own `unblur-deblur`).
pub const DEBLUR: &str = "deblur";
/// Finding scratches, cracks, dust and spots for repair (Unblur's own `unblur-repair`).
pub const DAMAGE_DETECTION: &str = "damage-detection";

impl Manifest {
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::Model(format!("the model manifest is invalid: {e}")))
    }

    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Model(format!(
                "no model manifest at {} ({e}); build the models with `make models`",
                path.display()
            ))
        })?;
        Self::parse(&text)
    }

    pub fn get(&self, id: &str) -> Result<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| Error::Model(format!("no model '{id}' in the manifest")))
    }

    /// The default model for a task (the one marked `default`, else the first).
    pub fn default_for(&self, task: &str) -> Result<&ModelEntry> {
        let of_task = || {
            self.models
                .iter()
                .filter(|m| m.task == task && !m.artifacts.is_empty())
        };
        of_task()
            .find(|m| m.default == Some(true))
            .or_else(|| of_task().next())
            .ok_or_else(|| Error::Model(format!("the manifest has no {task} model")))
    }
}

impl Manifest {
    /// The face model used when none is asked for: a built face-restoration model marked
    /// `default` (Unblur's own, once it beats the SR fallback), else none (the SR fallback).
    pub fn default_face_model(&self) -> Option<&ModelEntry> {
        self.models.iter().find(|m| {
            m.task == FACE_RESTORATION && m.default == Some(true) && !m.artifacts.is_empty()
        })
    }
}

impl Manifest {
    /// Upscaler `id` at denoise strength `denoise`: a built preset of it at that strength (one
    /// file, the first visit's), else the model and, below 1, its denoise partner, mixed at load
    /// time ([`crate::upscale::sr_network`]). The CLI and the page (through wasm) both ask here.
    pub fn upscaler(&self, id: &str, denoise: f32) -> Result<Upscaler<'_>> {
        let model = self.get(id)?;
        let preset = self.models.iter().find(|m| {
            !m.artifacts.is_empty()
                && m.preset
                    .as_ref()
                    .is_some_and(|p| p.of == id && p.denoise == denoise)
        });
        if let Some(p) = preset {
            return Ok(Upscaler {
                model: p,
                partner: None,
                denoise: 1.0,
            });
        }
        let partner = match &model.denoise_partner {
            Some(p) if denoise < 1.0 => Some(self.get(p)?),
            _ => None,
        };
        Ok(Upscaler {
            model,
            partner,
            denoise,
        })
    }

    /// The face restorers a user can download (`delivery: catalog`).
    pub fn catalog(&self) -> impl Iterator<Item = &ModelEntry> {
        self.models
            .iter()
            .filter(|m| m.delivery.as_deref() == Some(CATALOG) && m.download.is_some())
    }
}

impl ModelEntry {
    /// The artifact of a form (`fp32`, `int8`, `fp16`), or the shipped one when `form` is None.
    pub fn artifact(&self, form: Option<&str>) -> Result<&Artifact> {
        let form = form.or(self.ship.as_deref()).unwrap_or("fp32");
        self.artifacts
            .get(form)
            .ok_or_else(|| Error::Model(format!("model '{}' has no {form} form", self.id)))
    }
}

/// Checks bytes against a sha256 (lowercase hex).
pub fn verify(name: &str, bytes: &[u8], sha256: &str) -> Result<()> {
    let got = format!("{:x}", Sha256::digest(bytes));
    if !got.eq_ignore_ascii_case(sha256) {
        return Err(Error::Model(format!(
            "{name} failed its checksum (expected sha256 {sha256}, got {got}): the file is corrupt or not the expected model"
        )));
    }
    Ok(())
}

/// Reads an artifact from the model folder and checks it.
pub fn read(dir: &Path, artifact: &Artifact) -> Result<Vec<u8>> {
    let path: PathBuf = dir.join(&artifact.file);
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::Model(format!(
            "model file {} is missing or unreadable: {e}",
            path.display()
        ))
    })?;
    verify(&artifact.file, &bytes, &artifact.sha256)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_the_right_hash_and_names_the_file_otherwise() {
        let sha = "a591a6d40bf420404a011733cfb7b190d62c65bf0bcda32b57b277d9ad9f146e"; // "Hello World"
        assert!(verify("x.onnx", b"Hello World", sha).is_ok());
        let e = verify("x.onnx", b"Hello World!", sha)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.onnx") && e.contains("checksum"), "{e}");
    }

    fn entry(id: &str, extra: &str, built: bool) -> String {
        let arts = if built {
            r#"{"int8": {"file": "f.onnx", "sha256": "00"}}"#
        } else {
            "{}"
        };
        format!(r#"{{"id": "{id}", "task": "super-resolution", "artifacts": {arts} {extra}}}"#)
    }

    #[test]
    fn the_upscaler_is_a_preset_at_its_strength_else_the_model_and_its_partner() {
        let list = [
            entry("x4", r#", "denoise_partner": "wdn""#, true),
            entry("wdn", "", true),
            entry(
                "x4-dn50",
                r#", "preset": {"of": "x4", "denoise": 0.5}"#,
                true,
            ),
            entry(
                "x4-dn30",
                r#", "preset": {"of": "x4", "denoise": 0.3}"#,
                false,
            ),
        ];
        let m = Manifest::parse(&format!(
            r#"{{"version": 1, "models": [{}]}}"#,
            list.join(",")
        ))
        .unwrap();
        let ids = |id: &str, d: f32| {
            let u = m.upscaler(id, d).unwrap();
            let mut v = vec![u.model.id.clone()];
            v.extend(u.partner.map(|p| p.id.clone()));
            (v, u.denoise)
        };
        assert_eq!(ids("x4", 0.5), (vec!["x4-dn50".to_string()], 1.0));
        assert_eq!(ids("x4", 0.2), (vec!["x4".into(), "wdn".into()], 0.2));
        // A preset the build did not make is not used.
        assert_eq!(ids("x4", 0.3), (vec!["x4".into(), "wdn".into()], 0.3));
        assert_eq!(ids("x4", 1.0), (vec!["x4".to_string()], 1.0));
        assert_eq!(ids("wdn", 0.5), (vec!["wdn".to_string()], 0.5));
        assert!(m.upscaler("nope", 0.5).is_err());
    }
}
