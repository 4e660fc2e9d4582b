//! The native timing harness of `bench/native.py`, on Unblur's engine (tract). Prints one JSON
//! object per line. Tiles are raw little-endian f32 planar [1,3,H,W] files given as FILE:H:W.
//!
//! `unblur-bench-native MODEL REPS FILE:H:W...`
//!     loads MODEL, then per tile: builds the plan (timed), runs it once to warm up and REPS more
//!     times, one thread.
//! `unblur-bench-native --profile MODEL REPS FILE:H:W...`
//!     per tile: a warm-up run, then REPS runs of `Network::profile` (every node of tract's
//!     optimised plan timed with `Instant`); per operator kind, the median over the runs. Also
//!     REPS plain runs, to show what timing every node costs.
//! `unblur-bench-native --threads MODEL TILES N... FILE:H:W`
//!     tiles per second with N threads each running whole tiles on the one shared plan (what
//!     the CLI does): TILES tiles in all per N, after one warm-up run per thread.
//! `unblur-bench-native --fill PHOTO MASK REPS [OUT.png]`
//!     the repair stage's fill (`unblur::repair::repair`: the mask widened, Telea's fill, the
//!     wide parts by patches) on a decoded photo, REPS times, one thread; the filled photo to
//!     OUT.png (16-bit) when given, for `bench/repair_eval.py`'s fill-alone rows.
//! `unblur-bench-native --looks PHOTO REPS`
//!     `auto`'s looks before the deblur network (`unblur::deblur::Looks::take` over the deblur
//!     stage's first tiles, as planning the stage takes them: the crisp edges, and the
//!     periodicity when those do not decide) on a decoded photo, REPS times, one thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use unblur::engine::Network;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn tile(spec: &str) -> ([usize; 4], Vec<f32>) {
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (w, h, file) = (parts[0], parts[1], parts[2]);
    let (h, w): (usize, usize) = (h.parse().expect("H"), w.parse().expect("W"));
    let raw = std::fs::read(file).expect("read tile");
    let data: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(data.len(), 3 * h * w, "{file}: not 3×{h}×{w} floats");
    ([1, 3, h, w], data)
}

fn load(path: &str) -> (Network, f64) {
    let t0 = Instant::now();
    let bytes = std::fs::read(path).expect("read model");
    let net = Network::from_bytes(&bytes).expect("load model");
    (net, ms(t0))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!(
            "usage: unblur-bench-native [--profile] MODEL REPS FILE:H:W...\n       \
             unblur-bench-native --threads MODEL TILES N... FILE:H:W\n       \
             unblur-bench-native --fill PHOTO MASK REPS [OUT.png]\n       \
             unblur-bench-native --looks PHOTO REPS\n       \
             unblur-bench-native --gemm   (the f32 GEMM family measured at start-up, as JSON)"
        );
        std::process::exit(2)
    };
    match args.get(1).map(String::as_str) {
        Some("--profile") if args.len() >= 5 => profile(&args[2], &args[3], &args[4..]),
        #[cfg(target_arch = "x86_64")]
        Some("--gemm") => println!(
            "{}",
            serde_json::to_string(unblur::engine::gemm_native::choose()).unwrap()
        ),
        Some("--threads") if args.len() >= 6 => threads(&args[2], &args[3], &args[4..]),
        Some("--fill") if (5..=6).contains(&args.len()) => {
            fill(&args[2], &args[3], &args[4], args.get(5))
        }
        Some("--looks") if args.len() == 4 => looks(&args[2], &args[3]),
        Some(a) if !a.starts_with("--") && args.len() >= 4 => times(&args[1], &args[2], &args[3..]),
        _ => usage(),
    }
}

fn times(model: &str, reps: &str, specs: &[String]) {
    let (net, load_ms) = load(model);
    let reps: usize = reps.parse().expect("REPS");
    for spec in specs {
        let (shape, data) = tile(spec);
        let [_, _, h, w] = shape;
        let t = Instant::now();
        net.plan(&shape).expect("plan");
        let plan_ms = ms(t);
        let t = Instant::now();
        let out = net.run(&shape, data.clone()).expect("run");
        let first_ms = ms(t);
        let mut runs = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            let o = net.run(&shape, data.clone()).expect("run");
            runs.push(ms(t));
            std::hint::black_box(o);
        }
        let sum: f64 = out[0].1.iter().map(|&v| v as f64).sum();
        println!(
            "{{\"h\":{h},\"w\":{w},\"load_ms\":{load_ms:.2},\"plan_ms\":{plan_ms:.2},\"first_ms\":{first_ms:.2},\"runs_ms\":{runs:?},\"out_shape\":{:?},\"out_sum\":{sum}}}",
            out[0].0
        );
    }
}

fn profile(model: &str, reps: &str, specs: &[String]) {
    let (net, _) = load(model);
    let reps: usize = reps.parse().expect("REPS");
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64() * 1e3;
    for spec in specs {
        let (shape, data) = tile(spec);
        let [_, _, h, w] = shape;
        net.run(&shape, data.clone()).expect("warm-up run");
        // Alternate plain and profiled runs so that background load falls on both alike.
        let mut plain = Vec::with_capacity(reps);
        let mut totals = Vec::with_capacity(reps);
        let mut per_op: std::collections::BTreeMap<String, (usize, Vec<f64>)> = Default::default();
        for _ in 0..reps {
            let t = Instant::now();
            std::hint::black_box(net.run(&shape, data.clone()).expect("run"));
            plain.push(ms(t));
            let t = Instant::now();
            let ops = net.profile(&shape, data.clone(), now).expect("profile");
            totals.push(ms(t));
            for op in ops {
                let e = per_op.entry(op.op).or_insert((op.nodes, Vec::new()));
                e.1.push(op.ms);
            }
        }
        let mut ops: Vec<(String, usize, f64)> = per_op
            .into_iter()
            .map(|(op, (nodes, mut v))| (op, nodes, median(&mut v)))
            .collect();
        ops.sort_by(|a, b| b.2.total_cmp(&a.2));
        let ops_json: Vec<String> = ops
            .iter()
            .map(|(op, nodes, m)| format!("{{\"op\":{op:?},\"nodes\":{nodes},\"ms\":{m:.3}}}"))
            .collect();
        println!(
            "{{\"h\":{h},\"w\":{w},\"reps\":{reps},\"plain_ms\":{:.2},\"profiled_ms\":{:.2},\"ops\":[{}]}}",
            median(&mut plain),
            median(&mut totals),
            ops_json.join(",")
        );
    }
}

fn threads(model: &str, tiles: &str, rest: &[String]) {
    let (net, _) = load(model);
    let tiles: usize = tiles.parse().expect("TILES");
    let (spec, counts) = rest.split_last().expect("FILE:H:W");
    let (shape, data) = tile(spec);
    let [_, _, h, w] = shape;
    net.plan(&shape).expect("plan");
    for n in counts {
        let n: usize = n.parse().expect("N");
        let next = AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    std::hint::black_box(net.run(&shape, data.clone()).expect("warm-up run"));
                });
            }
        });
        let warm_ms = ms(t);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < tiles {
                        std::hint::black_box(net.run(&shape, data.clone()).expect("run"));
                    }
                });
            }
        });
        let wall_ms = ms(t);
        println!(
            "{{\"h\":{h},\"w\":{w},\"threads\":{n},\"tiles\":{tiles},\"wall_ms\":{wall_ms:.2},\"ms_per_tile\":{:.2},\"warm_ms\":{warm_ms:.2}}}",
            wall_ms / tiles as f64
        );
    }
}

fn looks(photo: &str, reps: &str) {
    use unblur::deblur::{DeblurMode, Stage, TILE};
    let photo = unblur::image_io::decode(&std::fs::read(photo).expect("read photo")).expect("photo");
    let reps: usize = reps.parse().expect("REPS");
    let mut runs = Vec::with_capacity(reps);
    let mut verdict = None;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        // Planning the `auto` stage takes the looks; deciding with no tile reads them back.
        let mut stage = Stage::new(&photo.rgb, DeblurMode::Auto, TILE).expect("stage");
        runs.push(ms(t0));
        if stage.first().is_empty() {
            stage.decide().expect("decide");
        }
        verdict = Some((stage.first().len(), stage.verdict().copied()));
    }
    let pixels = photo.width() as f64 * photo.height() as f64;
    let (first, verdict) = verdict.expect("a run");
    println!(
        "{}",
        serde_json::json!({"pixels": pixels, "first_tiles": first, "verdict": verdict, "runs_ms": runs, "median_ms": median(&mut runs)})
    );
}

fn fill(photo: &str, mask: &str, reps: &str, out: Option<&String>) {
    let photo = unblur::image_io::decode(&std::fs::read(photo).expect("read photo")).expect("photo");
    let mask = unblur::Mask::decode(&std::fs::read(mask).expect("read mask")).expect("mask");
    let reps: usize = reps.parse().expect("REPS");
    let mut runs = Vec::with_capacity(reps);
    let mut rgb = photo.rgb.clone();
    for _ in 0..reps.max(1) {
        rgb = photo.rgb.clone();
        let t0 = Instant::now();
        unblur::repair::repair(&mut rgb, &mask).expect("repair");
        runs.push(ms(t0));
    }
    if let Some(out) = out {
        rgb.save(out).expect("write OUT.png");
    }
    let pixels = photo.width() as f64 * photo.height() as f64;
    println!(
        "{}",
        serde_json::json!({"pixels": pixels, "masked": mask.count(), "runs_ms": runs, "median_ms": median(&mut runs)})
    );
}
