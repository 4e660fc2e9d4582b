//! `unblur-bench-native MODEL REPS FILE:H:W...` — loads MODEL with Unblur's engine (tract, one
//! thread), then for each raw little-endian f32 planar [1,3,H,W] file: builds the plan (timed),
//! runs it once to warm up and REPS more times. Prints one JSON object per line.

use std::time::Instant;
use unblur::engine::Network;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: unblur-bench-native MODEL REPS FILE:H:W...");
        std::process::exit(2);
    }
    let t0 = Instant::now();
    let bytes = std::fs::read(&args[1]).expect("read model");
    let net = Network::from_bytes(&bytes).expect("load model");
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let reps: usize = args[2].parse().expect("REPS");
    for spec in &args[3..] {
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let (w, h, file) = (parts[0], parts[1], parts[2]);
        let (h, w): (usize, usize) = (h.parse().unwrap(), w.parse().unwrap());
        let raw = std::fs::read(file).expect("read tile");
        let data: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(data.len(), 3 * h * w, "{file}: not 3×{h}×{w} floats");
        let shape = [1, 3, h, w];
        let t = Instant::now();
        net.plan(&shape).expect("plan");
        let plan_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let out = net.run(&shape, data.clone()).expect("run");
        let first_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut runs = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            let o = net.run(&shape, data.clone()).expect("run");
            runs.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(o);
        }
        let sum: f64 = out[0].1.iter().map(|&v| v as f64).sum();
        println!(
            "{{\"h\":{h},\"w\":{w},\"load_ms\":{load_ms:.2},\"plan_ms\":{plan_ms:.2},\"first_ms\":{first_ms:.2},\"runs_ms\":{runs:?},\"out_shape\":{:?},\"out_sum\":{sum}}}",
            out[0].0
        );
    }
}
