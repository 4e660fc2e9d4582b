//! `unblur models fetch` and `restore --face-model ID` against a local stand-in for the model
//! host (`tests/model_host.py`: a redirect to a second origin, as Hugging Face does): nothing is
//! fetched unasked, a corrupt file stores nothing, an interrupted download resumes with a Range
//! request, and the fetched model restores the same photo as the same `.pth` given as a file.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;

struct Host {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn host(dir: &Path, log: PathBuf) -> Host {
    let (port, cdn) = (free_port(), free_port());
    let mut child = Command::new("python3")
        .arg(root().join("tests/model_host.py"))
        .args(["--dir".as_ref(), dir.as_os_str()])
        .args(["--port", &port.to_string(), "--cdn-port", &cdn.to_string()])
        .args(["--log".as_ref(), log.as_os_str()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Host { child, port, log }
}

impl Host {
    fn mode(&self, mode: &str) {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request; urllib.request.urlopen(sys.argv[1]).read()",
            ])
            .arg(format!("http://127.0.0.1:{}/_mode/{mode}", self.port))
            .status()
            .unwrap();
        assert!(out.success());
    }
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A model folder like the built one, whose catalog has one more entry: the test checkpoint,
/// published at the stand-in host.
fn models_with_test_entry(dir: &Path, port: u16) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for e in std::fs::read_dir(model_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.file_name().unwrap() != "manifest.json" {
            std::os::unix::fs::symlink(&p, models.join(p.file_name().unwrap())).unwrap();
        }
    }
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("models/build/checkpoints/gfpgan.json")).unwrap(),
    )
    .unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_dir().join("manifest.json")).unwrap()).unwrap();
    let list = m["models"].as_array_mut().unwrap();
    let mut e = list
        .iter()
        .find(|e| e["id"] == "gfpgan-1.4")
        .unwrap()
        .clone();
    e["id"] = "test-gfpgan".into();
    e["download"] = serde_json::json!({
        "file": "gfpgan.pth",
        "bytes": meta["pth_bytes"],
        "sha256": meta["pth_sha256"],
        "urls": [format!("http://127.0.0.1:{port}/resolve/gfpgan.pth")],
    });
    list.push(e);
    std::fs::write(models.join("manifest.json"), m.to_string()).unwrap();
    models
}

fn unblur(models: &Path, cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unblur"));
    c.env("UNBLUR_MODELS", models).env("UNBLUR_CACHE", cache);
    c
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_catalog_model_is_fetched_only_when_asked_checked_resumed_and_restores() {
    let tmp = tempdir("models-fetch");
    let dir = tmp.path();
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let pth = root().join("models/build/checkpoints/gfpgan.pth");
    std::os::unix::fs::symlink(&pth, served.join("gfpgan.pth")).unwrap();
    let h = host(&served, dir.join("requests.log"));
    let models = models_with_test_entry(dir, h.port);
    let cache = dir.join("cache");
    let photo = dev("codeformer/cropped_faces/0143.png");
    let restore = |face: &Path, out: &str, extra: &[&str]| {
        unblur(&models, &cache)
            .args(["restore", "--scale", "1", "--json", "--face-model"])
            .arg(face)
            .args(extra)
            .arg("--out")
            .arg(dir.join(out))
            .arg(&photo)
            .output()
            .unwrap()
    };

    // Not stored, not asked to fetch: a clear error, no request.
    let out = restore(Path::new("test-gfpgan"), "out0", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("models fetch test-gfpgan"),
        "{}",
        stderr(&out)
    );
    assert!(h.requests().is_empty(), "{:?}", h.requests());

    // A corrupt file: the checksum fails and nothing is stored.
    h.mode("corrupt");
    let fetch = || {
        unblur(&models, &cache)
            .args(["models", "fetch", "test-gfpgan"])
            .output()
            .unwrap()
    };
    let out = fetch();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("checksum"), "{}", stderr(&out));
    let downloads = cache.join("downloads");
    let stored = || {
        std::fs::read_dir(&downloads)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(stored(), 0, "a corrupt download left a file");

    // Interrupted halfway: the part stays, and the next fetch resumes it with a Range request.
    h.mode("halfway");
    let out = fetch();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let part = downloads.join("gfpgan.part");
    let half = std::fs::metadata(&part).unwrap().len();
    assert!(half > 0 && half < std::fs::metadata(&pth).unwrap().len());
    assert!(!downloads.join("gfpgan.pth").exists());
    h.mode("ok");
    let out = fetch();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        h.requests()
            .iter()
            .any(|r| r.ends_with(&format!("bytes={half}-"))),
        "no resume request: {:?}",
        h.requests()
    );
    assert_eq!(
        std::fs::read(downloads.join("gfpgan.pth")).unwrap(),
        std::fs::read(&pth).unwrap()
    );
    let list = unblur(&models, &cache)
        .args(["models", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let row = list.lines().find(|l| l.starts_with("test-gfpgan")).unwrap();
    assert!(row.contains(" yes "), "{row}");

    // The fetched model restores, exactly as the same checkpoint given as a file.
    let by_id = restore(Path::new("test-gfpgan"), "by-id", &[]);
    assert!(by_id.status.success(), "{}", stderr(&by_id));
    let requests = h.requests().len();
    let by_file = restore(&pth, "by-file", &[]);
    assert!(by_file.status.success(), "{}", stderr(&by_file));
    assert_eq!(
        h.requests().len(),
        requests,
        "a stored model was fetched again"
    );
    let a = std::fs::read(dir.join("by-id/0143-unblur-x1.png")).unwrap();
    let b = std::fs::read(dir.join("by-file/0143-unblur-x1.png")).unwrap();
    assert!(a == b, "the catalog model and the same file differ");
    let plain = restore(Path::new("sr"), "plain", &[]);
    assert!(plain.status.success());
    assert!(
        std::fs::read(dir.join("plain/0143-unblur-x1.png")).unwrap() != a,
        "GFPGAN changed nothing"
    );

    // A fidelity is CodeFormer's setting only.
    let out = restore(Path::new("test-gfpgan"), "bad", &["--fidelity", "0.3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("only CodeFormer"), "{}", stderr(&out));
    drop(h);
}
