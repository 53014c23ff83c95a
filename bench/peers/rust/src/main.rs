// The scylla-rust-driver client of the driver comparison (bench/peers/README.md), written as its users
// write it: #[tokio::main] (the multi-threaded runtime), one Session shared by `concurrency` tasks, each
// awaiting its next request. Same options and the same JSON line as every peer client.
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Options {
    host: String,
    port: u16,
    workload: String,
    concurrency: usize,
    warmup: f64,
    duration: f64,
    rows: u32,
}

fn usage(why: &str) -> ! {
    eprintln!("peer_rust: {why}\nsee bench/peers/README.md for the options");
    std::process::exit(2);
}

fn num<T: std::str::FromStr>(a: &str, v: &str) -> T {
    v.parse().unwrap_or_else(|_| usage(&format!("bad value for {a}")))
}

fn parse() -> Options {
    let mut o = Options { host: "127.0.0.1".into(), port: 9042, workload: "read".into(), concurrency: 1, warmup: 2.0, duration: 5.0, rows: 1000 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let v = args.get(i + 1).cloned().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a {
            "--host" => o.host = v,
            "--port" => o.port = num(a, &v),
            "--dc" => {}
            "--workload" => o.workload = v,
            "--concurrency" => o.concurrency = num(a, &v),
            "--warmup" => o.warmup = num(a, &v),
            "--duration" => o.duration = num(a, &v),
            "--rows" => o.rows = num(a, &v),
            _ => usage(&format!("unknown option {a}")),
        }
        i += 2;
    }
    if !["read", "write", "local"].contains(&o.workload.as_str()) {
        usage("--workload is read, write or local");
    }
    o
}

fn cpu_now() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

#[tokio::main]
async fn main() {
    let o = parse();
    let session: Session = match SessionBuilder::new().known_node(format!("{}:{}", o.host, o.port)).build().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peer_rust: {e}");
            std::process::exit(1);
        }
    };
    let session = Arc::new(session);
    // The local workload is a plain (unprepared) statement, as in every client that can send one.
    let mut local = Statement::new("SELECT release_version FROM system.local");
    local.set_consistency(Consistency::LocalOne);
    let query = match o.workload.as_str() {
        "read" => Some("SELECT v FROM cqlcoro_peers.kv WHERE k = ?"),
        "write" => Some("INSERT INTO cqlcoro_peers.kv (k, v) VALUES (?, ?)"),
        _ => None,
    };
    let prepared = match query {
        None => None,
        Some(q) => match session.prepare(q).await {
            Ok(mut p) => {
                p.set_consistency(Consistency::LocalOne);
                Some(Arc::new(p))
            }
            Err(e) => {
                eprintln!("peer_rust: {e}");
                std::process::exit(1);
            }
        },
    };
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(Mutex::new(String::new()));
    let value = "v".repeat(100);
    let mut tasks = Vec::with_capacity(o.concurrency);
    for i in 0..o.concurrency {
        let (session, prepared, local, ok, errors, stop, first_error, value, workload, rows) = (
            session.clone(), prepared.clone(), local.clone(), ok.clone(), errors.clone(), stop.clone(), first_error.clone(),
            value.clone(), o.workload.clone(), o.rows,
        );
        tasks.push(tokio::spawn(async move {
            let mut x: u32 = (i as u32 + 1).wrapping_mul(2654435761).wrapping_add(1);
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let k = (x % rows) as i32;
                // Reads take their one value out of the row, as a user does.
                let r: Result<(), String> = match workload.as_str() {
                    "read" => match session.execute_unpaged(prepared.as_deref().unwrap(), (k,)).await {
                        Ok(qr) => qr.into_rows_result().map_err(|e| e.to_string()).and_then(|rows| {
                            rows.single_row::<(&str,)>().map(|(v,)| assert_eq!(v.len(), 100)).map_err(|e| e.to_string())
                        }),
                        Err(e) => Err(e.to_string()),
                    },
                    "write" => session.execute_unpaged(prepared.as_deref().unwrap(), (k, value.as_str())).await.map(|_| ()).map_err(|e| e.to_string()),
                    _ => match session.query_unpaged(local.clone(), &[]).await {
                        Ok(qr) => qr.into_rows_result().map_err(|e| e.to_string()).and_then(|rows| {
                            rows.single_row::<(&str,)>().map(|_| ()).map_err(|e| e.to_string())
                        }),
                        Err(e) => Err(e.to_string()),
                    },
                };
                match r {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_error.lock().unwrap();
                        if f.is_empty() {
                            *f = e;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(o.warmup)).await;
    let (ok0, err0, cpu0, t0) = (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed), cpu_now(), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(o.duration)).await;
    let (ok1, err1, cpu1) = (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed), cpu_now());
    let seconds = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let fe: String = first_error.lock().unwrap().chars().map(|c| if c == '"' || c == '\\' || c < ' ' { '\'' } else { c }).collect();
    println!(
        "{{\"driver\": \"scylla-rust-driver\", \"version\": \"1.9.0\", \"workload\": \"{}\", \"concurrency\": {}, \"requests\": {}, \"errors\": {}, \"seconds\": {:.4}, \"cpu_seconds\": {:.4}, \"first_error\": \"{}\"}}",
        o.workload, o.concurrency, ok1 - ok0, err1 - err0, seconds, cpu1 - cpu0, fe
    );
    if ok1 == ok0 {
        std::process::exit(1);
    }
}
