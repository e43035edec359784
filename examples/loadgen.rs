//! A load generator that plays the MTA side (like Postfix: one connection per client, several
//! messages per connection with ABORT between them) against any milter address.
//!
//! ```sh
//! cargo run --release --example loadgen -- --addr inet:127.0.0.1:8897 --corpus DIR \
//!     --concurrency 8 --messages 2000 --seconds 60 [--pid PID]
//! cargo run --release --example loadgen -- --null --concurrency 32   # in-process null filter
//! ```
//!
//! Every run is bounded by a message count and a wall-clock limit. It reports messages/s,
//! MB/s, latency percentiles, decisions and modifications, and — given the server's pid — its
//! CPU time per message and peak RSS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inspect_milter::milter::response::Response;
use inspect_milter::milter::{EndOfMessage, Filter, FilterError, Verdict};
use inspect_milter::mta::{Client, Message, POSTFIX_OFFER};
use inspect_milter::server::{self, ListenAddr, Listener, Phase};

struct Args {
    addr: Option<ListenAddr>,
    null: bool,
    corpus: Option<PathBuf>,
    size: usize,
    concurrency: usize,
    messages: usize,
    per_connection: usize,
    seconds: u64,
    pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen (--addr ADDR | --null) [--corpus DIR | --size BYTES] [--concurrency N] \
         [--messages N] [--per-connection N] [--seconds S] [--pid PID]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut a = Args {
        addr: None,
        null: false,
        corpus: None,
        size: 4096,
        concurrency: 8,
        messages: 2000,
        per_connection: 20,
        seconds: 60,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--addr" => a.addr = Some(val().parse().unwrap_or_else(|e| panic!("{e}"))),
            "--null" => a.null = true,
            "--corpus" => a.corpus = Some(PathBuf::from(val())),
            "--size" => a.size = val().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => a.concurrency = val().parse().unwrap_or_else(|_| usage()),
            "--messages" => a.messages = val().parse().unwrap_or_else(|_| usage()),
            "--per-connection" => a.per_connection = val().parse().unwrap_or_else(|_| usage()),
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--pid" => a.pid = Some(val().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if a.addr.is_none() && !a.null {
        usage();
    }
    a
}

/// Accepts everything and changes nothing: the protocol and loopback alone.
struct NullFilter;

impl Filter for NullFilter {
    fn end_of_message(&self, _: &EndOfMessage) -> Result<Verdict, FilterError> {
        Ok(Verdict::accept())
    }
}

fn corpus(args: &Args) -> Vec<Message> {
    let mut out = Vec::new();
    if let Some(dir) = &args.corpus {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(raw) = std::fs::read(&p) {
                out.push(Message::from_eml(&raw));
            }
        }
    } else {
        let line = "The quick brown fox jumps over the lazy dog 0123456789\n";
        let body = line.repeat(args.size / line.len() + 1);
        let raw = format!(
            "From: a@example.org\nTo: b@example.net\nSubject: load\nMessage-ID: <l@example.org>\n\n{body}"
        );
        out.push(Message::from_eml(raw.as_bytes()));
    }
    assert!(!out.is_empty(), "no messages to send");
    out
}

/// utime + stime in clock ticks, and peak RSS in KiB, of a process.
fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks, hwm))
}

fn main() {
    let args = parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let messages = Arc::new(corpus(&args));
    let bytes_per_round: usize = messages
        .iter()
        .map(|m| m.body.len() + m.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>())
        .sum();
    let mut self_server = None;
    let (addr, pid) = if args.null {
        let listener = Listener::bind(&"inet:127.0.0.1:0".parse().unwrap(), 0o660).await.unwrap();
        let addr = listener.local_addr();
        let (_ftx, filters) = tokio::sync::watch::channel(Arc::new(NullFilter) as Arc<dyn Filter>);
        let (ptx, prx) = tokio::sync::watch::channel(Phase::Running);
        let opts = server::Options {
            max_connections: 1000,
            max_message_size: 64 << 20,
            idle_timeout: Duration::from_secs(600),
            message_timeout: Duration::from_secs(600),
            progress_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(1),
            on_error: Verdict::accept(),
            filter_threads: 2,
        };
        let task = tokio::spawn(server::run(vec![listener], filters, opts, prx));
        self_server = Some((ptx, task, _ftx));
        (addr, Some(std::process::id()))
    } else {
        (args.addr.clone().unwrap(), args.pid)
    };
    let before = pid.and_then(proc_usage);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (addr, messages, next) = (addr.clone(), Arc::clone(&messages), Arc::clone(&next));
        let (total, per_conn) = (args.messages, args.per_connection.max(1));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
            let mut mods = 0usize;
            let mut errors = 0usize;
            'outer: loop {
                let Ok(mut c) = Client::connect(&addr, Duration::from_secs(30)).await else {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if Instant::now() > deadline {
                        break;
                    }
                    continue;
                };
                if c.negotiate(POSTFIX_OFFER).await.is_err()
                    || c.open("192.0.2.1", "load.example").await.is_err()
                {
                    errors += 1;
                    continue;
                }
                for _ in 0..per_conn {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() > deadline {
                        break 'outer;
                    }
                    let m = &messages[i % messages.len()];
                    let t = Instant::now();
                    match c.send(m).await {
                        Ok(out) => {
                            lat.push(t.elapsed());
                            mods += out.modifications.len();
                            let d = match out.action {
                                Some(Response::Accept) | Some(Response::Continue) if out.quarantined() => {
                                    "quarantine"
                                }
                                Some(Response::Accept) | Some(Response::Continue) => "accept",
                                Some(Response::Reject) | Some(Response::ReplyCode(_)) => "reject/tempfail",
                                Some(Response::Tempfail) => "tempfail",
                                Some(Response::Discard) => "discard",
                                _ => "other",
                            };
                            *decisions.entry(d.to_string()).or_default() += 1;
                        }
                        Err(_) => {
                            errors += 1;
                            continue 'outer;
                        }
                    }
                    if c.abort().await.is_err() {
                        continue 'outer;
                    }
                }
                let _ = c.quit().await;
            }
            (lat, decisions, mods, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
    let (mut mods, mut errors) = (0, 0);
    for t in tasks {
        let (l, d, m, e) = t.await.unwrap();
        lat.extend(l);
        for (k, v) in d {
            *decisions.entry(k).or_default() += v;
        }
        mods += m;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = pid.and_then(proc_usage);
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| {
        lat.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let avg_bytes = bytes_per_round as f64 / messages.len() as f64;
    println!("target            {}{}", addr, if args.null { " (in-process null filter)" } else { "" });
    println!("concurrency       {}", args.concurrency);
    println!("messages          {n} in {elapsed:.2}s ({} errors)", errors);
    println!(
        "throughput        {:.0} msg/s, {:.1} MB/s",
        n as f64 / elapsed,
        n as f64 * avg_bytes / elapsed / 1e6
    );
    println!(
        "latency ms        p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    println!("decisions         {decisions:?}");
    println!("modifications     {mods}");
    if let (Some((t0, _)), Some((t1, hwm))) = (before, after) {
        let tick = 100.0; // USER_HZ on Linux
        let cpu_ms = (t1 - t0) as f64 / tick * 1000.0;
        let note = if args.null { " (this process: client and server)" } else { "" };
        println!("server cpu        {:.3} ms/message{note}", cpu_ms / n.max(1) as f64);
        println!("server peak rss   {:.1} MB{note}", hwm as f64 / 1024.0);
    }
    if let Some((ptx, task, _f)) = self_server {
        let _ = ptx.send(Phase::Stop);
        let _ = task.await;
    }
}
