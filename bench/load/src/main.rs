//! `bench-load URL TOKEN QUERY [CLIENTS] [SECONDS]`: CLIENTS clients (default 50)
//! each send QUERY to URL one after another for SECONDS (default 10), every answer
//! checked (HTTP 200, no GraphQL errors). Prints one JSON line: requests, requests
//! per second, p50/p99/max latency in milliseconds.

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, query, rest @ ..] = &args[..] else {
        eprintln!("usage: bench-load URL TOKEN QUERY [CLIENTS] [SECONDS]");
        std::process::exit(2);
    };
    let clients: usize = rest.first().map_or(50, |c| c.parse().expect("CLIENTS"));
    let seconds: u64 = rest.get(1).map_or(10, |s| s.parse().expect("SECONDS"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = serde_json::json!({ "query": query });
    let (latencies, elapsed) = rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .expect("client");
        let until = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let (http, url, token, body) =
                    (http.clone(), url.clone(), token.clone(), body.clone());
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        let resp = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                            .expect("request");
                        assert_eq!(resp.status().as_u16(), 200);
                        let answer: serde_json::Value = resp.json().await.expect("JSON answer");
                        assert!(answer["errors"].is_null(), "{answer}");
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.expect("worker"));
        }
        (all, start.elapsed())
    });
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{}",
        serde_json::json!({
            "requests": ms.len(),
            "rps": (ms.len() as f64 / elapsed.as_secs_f64()).round(),
            "p50_ms": (at(0.50) * 100.0).round() / 100.0,
            "p99_ms": (at(0.99) * 100.0).round() / 100.0,
            "max_ms": (at(1.0) * 100.0).round() / 100.0,
        })
    );
}
