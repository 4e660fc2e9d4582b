//! The CLI's face-model store: the catalog's downloads (resumed with HTTP Range, hashed as the
//! bytes arrive, kept only once their sha256 matches) and the conversions of `.pth` files, keyed
//! by the source's sha256 and the converter version, in the user's cache directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use unblur::models::{Manifest, ModelEntry};
use unblur::{convert, Error, Result};

/// `$UNBLUR_CACHE`, else `$XDG_CACHE_HOME/unblur`, else `~/.cache/unblur`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("UNBLUR_CACHE") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("unblur");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache/unblur")
}

fn downloaded(entry: &ModelEntry) -> Option<PathBuf> {
    let d = entry.download.as_ref()?;
    Some(cache_dir().join("downloads").join(&d.file))
}

fn converted_path(sha256: &str) -> PathBuf {
    cache_dir()
        .join("converted")
        .join(convert::stored_name(sha256))
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    Error::io(context)
}

fn size_text(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

/// `unblur models list`: the catalog, what of it is stored, sizes and licenses.
pub fn list(manifest: &Manifest) {
    println!(
        "{:14} {:20} {:>10}  {:9} license",
        "id", "name", "size", "stored"
    );
    for e in manifest.catalog() {
        let d = e.download.as_ref().unwrap();
        let stored = match downloaded(e) {
            Some(p) if p.exists() => {
                if converted_path(&d.sha256).exists() || e.arch.as_deref() == Some("onnx") {
                    "yes"
                } else {
                    "download"
                }
            }
            _ => "no",
        };
        println!(
            "{:14} {:20} {:>10}  {:9} {}",
            e.id,
            e.name.as_deref().unwrap_or(""),
            size_text(d.bytes),
            stored,
            e.license.as_deref().unwrap_or("")
        );
    }
    println!("\nstore: {}", cache_dir().display());
}

/// `unblur models fetch ID`: downloads a catalog model's file (from `url`, else its URLs in
/// order), checks it, and converts it when it is a checkpoint. Returns the stored file.
pub fn fetch(entry: &ModelEntry, url: Option<&str>) -> Result<PathBuf> {
    let d = entry
        .download
        .as_ref()
        .ok_or_else(|| Error::Model(format!("'{}' is not a catalog model", entry.id)))?;
    let target = downloaded(entry).unwrap();
    if !target.exists() {
        let dir = target.parent().unwrap();
        fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let urls: Vec<&str> = match url {
            Some(u) => vec![u],
            None => d.urls.iter().map(String::as_str).collect(),
        };
        let mut last = None;
        for u in urls {
            eprintln!(
                "fetching {} ({}, {}) from {u}",
                entry.id,
                size_text(d.bytes),
                entry.license.as_deref().unwrap_or("see its license")
            );
            match download(u, &target, d.bytes, &d.sha256) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    eprintln!("unblur: {e}");
                    last = Some(e)
                }
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
    }
    if entry.arch.as_deref() == Some("onnx") {
        return Ok(target);
    }
    let bytes = fs::read(&target).map_err(io(format!("cannot read {}", target.display())))?;
    store_conversion(&bytes, &d.sha256)
}

/// Downloads `url` into `target` through `target.part`, resuming a part left by an interrupted
/// run with a Range request; the part becomes the target only when its sha256 matches.
fn download(url: &str, target: &Path, size: Option<u64>, sha256: &str) -> Result<()> {
    let part = target.with_extension("part");
    let mut hasher = Sha256::new();
    let mut have = 0u64;
    if let Ok(mut f) = File::open(&part) {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(io("cannot read the partial download".into()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            have += n as u64;
        }
    }
    let mut req = ureq::get(url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let resp = req
        .call()
        .map_err(|e| Error::Model(format!("cannot download {url}: {e}")))?;
    let resumed = resp.status().as_u16() == 206;
    if !resumed && have > 0 {
        // The server sent the whole file: start the part over.
        hasher = Sha256::new();
        have = 0;
    }
    let total = size.or_else(|| {
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|n| n + have)
    });
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&part)
        .map_err(io(format!("cannot write {}", part.display())))?;
    let bar = ProgressBar::new(total.unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_position(have);
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(|e| {
            Error::Model(format!(
                "the download from {url} stopped: {e} (run the same command again to resume)"
            ))
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(io(format!("cannot write {}", part.display())))?;
        have += n as u64;
        bar.set_position(have);
    }
    bar.finish_and_clear();
    drop(out);
    if let Some(t) = size.filter(|&t| have < t) {
        return Err(Error::Model(format!(
            "the download from {url} ended at {have} of {t} bytes (run the same command again to resume)"
        )));
    }
    let got = format!("{:x}", hasher.finalize());
    if !got.eq_ignore_ascii_case(sha256) {
        let _ = fs::remove_file(&part);
        return Err(Error::Model(format!(
            "the file from {url} failed its checksum (expected sha256 {sha256}, got {got}); nothing was stored"
        )));
    }
    fs::rename(&part, target).map_err(io(format!("cannot write {}", target.display())))
}

/// Converts a checkpoint (unless a conversion of it by this converter is stored) and stores the
/// result; returns its path.
fn store_conversion(pth: &[u8], sha256: &str) -> Result<PathBuf> {
    let path = converted_path(sha256);
    if path.exists() {
        return Ok(path);
    }
    eprintln!("converting the checkpoint for tract …");
    let onnx = convert::to_stored(convert::convert(pth)?);
    let dir = path.parent().unwrap();
    fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let tmp = path.with_extension("part");
    fs::write(&tmp, &onnx)
        .and_then(|_| fs::rename(&tmp, &path))
        .map_err(io(format!("cannot write {}", path.display())))?;
    Ok(path)
}

/// The ONNX bytes of a face model given as a catalog id or a file (`.pth` converted once and
/// stored, `.onnx` as it is). A catalog model that is not stored is fetched only with `fetch`.
pub fn face_model(manifest: &Manifest, spec: &str, fetch_missing: bool) -> Result<Option<Vec<u8>>> {
    let read = |p: &Path| fs::read(p).map_err(io(format!("cannot read {}", p.display())));
    if let Some(entry) = manifest.catalog().find(|e| e.id == spec) {
        let d = entry.download.as_ref().unwrap();
        let stored = if entry.arch.as_deref() == Some("onnx") {
            downloaded(entry).unwrap()
        } else {
            converted_path(&d.sha256)
        };
        if stored.exists() {
            return read(&stored).map(Some);
        }
        if !fetch_missing && !downloaded(entry).unwrap().exists() {
            return Err(Error::Model(format!(
                "{} is not stored: fetch it with `unblur models fetch {}` ({}, license: {}), or add --fetch",
                entry.name.as_deref().unwrap_or(&entry.id),
                entry.id,
                size_text(d.bytes),
                entry.license.as_deref().unwrap_or("see its page")
            )));
        }
        return read(&fetch(entry, None)?).map(Some);
    }
    let path = Path::new(spec);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = read(path)?;
    if !convert::is_checkpoint(&bytes) {
        return Ok(Some(bytes));
    }
    let sha = format!("{:x}", Sha256::digest(&bytes));
    read(&store_conversion(&bytes, &sha)?).map(Some)
}
