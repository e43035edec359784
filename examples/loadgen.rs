//! A load generator that plays the MTA side (like Postfix: one connection per client, several
//! messages per connection with ABORT between them) against any milter address.
//!
//! ```sh
//! cargo run --release --example loadgen -- --addr inet:127.0.0.1:8897 --corpus DIR \
//!     --concurrency 8 --messages 2000 --seconds 60 [--pid PID]
//! cargo run --release --example loadgen -- --null --concurrency 32   # in-process null filter
//! cargo run --release --example loadgen -- --null --addr unix:/tmp/null.sock   # ... listening there
//! cargo run --release --example loadgen -- --engine CONFIG --generate 400   # no protocol at all
//! ```
//!
//! The messages come from a directory of `*.eml` files (`--corpus`), from the deterministic
//! benchmark corpus generated in memory (`--generate N [--seed S]`, see `benches/corpus.rs`),
//! or are one synthetic message of `--size` bytes.
//!
//! Every run is bounded by a message count and a wall-clock limit. It reports messages/s,
//! MB/s, latency percentiles, decisions and modifications, and — given the server's pid — its
//! CPU time per message and peak RSS. `--engine CONFIG` instead runs the daemon's filter
//! (pipeline, policy, quarantine store) of that configuration in this process on
//! `inspect.threads` threads, with no milter protocol and no sockets: the ceiling the daemon's
//! throughput is measured against. `--idle N` opens N connections that only negotiate and
//! say HELO, holds them while the load runs, then reports the server's RSS with them open.

#[path = "../benches/corpus.rs"]
mod corpus;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inspect_milter::config::Config;
use inspect_milter::milter::envelope::Client as EnvelopeClient;
use inspect_milter::milter::response::Response;
use inspect_milter::milter::{Action, EndOfMessage, Envelope, Filter, FilterError, Verdict};
use inspect_milter::mta::{Client, Message, POSTFIX_OFFER};
use inspect_milter::pipeline::{InspectFilter, Pipeline};
use inspect_milter::server::{self, ListenAddr, Listener, Phase};

struct Args {
    addr: Option<ListenAddr>,
    null: bool,
    engine: Option<PathBuf>,
    corpus: Option<PathBuf>,
    generate: Option<usize>,
    seed: u64,
    idle: usize,
    size: usize,
    concurrency: usize,
    messages: usize,
    per_connection: usize,
    seconds: u64,
    pids: Vec<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen (--addr ADDR | --null [--addr ADDR] | --engine CONFIG) [--corpus DIR | --generate N [--seed S] | --size BYTES] \
         [--concurrency N] [--messages N] [--per-connection N] [--seconds S] [--pid PID[,PID…]] [--idle N]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut a = Args {
        addr: None,
        null: false,
        engine: None,
        corpus: None,
        generate: None,
        seed: corpus::DEFAULT_SEED,
        idle: 0,
        size: 4096,
        concurrency: 8,
        messages: 2000,
        per_connection: 20,
        seconds: 60,
        pids: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--addr" => a.addr = Some(val().parse().unwrap_or_else(|e| panic!("{e}"))),
            "--null" => a.null = true,
            "--engine" => a.engine = Some(PathBuf::from(val())),
            "--corpus" => a.corpus = Some(PathBuf::from(val())),
            "--generate" => a.generate = Some(val().parse().unwrap_or_else(|_| usage())),
            "--seed" => a.seed = val().parse().unwrap_or_else(|_| usage()),
            "--idle" => a.idle = val().parse().unwrap_or_else(|_| usage()),
            "--size" => a.size = val().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => a.concurrency = val().parse().unwrap_or_else(|_| usage()),
            "--messages" => a.messages = val().parse().unwrap_or_else(|_| usage()),
            "--per-connection" => a.per_connection = val().parse().unwrap_or_else(|_| usage()),
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--pid" => {
                a.pids = val().split(',').map(|p| p.trim().parse().unwrap_or_else(|_| usage())).collect()
            }
            _ => usage(),
        }
    }
    if a.addr.is_none() && !a.null && a.engine.is_none() {
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
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(raw) = std::fs::read(&p) {
                out.push(Message::from_eml(&raw));
            }
        }
    } else if let Some(count) = args.generate {
        out.extend(corpus::generate(args.seed, count).map(|m| Message::from_eml(&m.bytes)));
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

/// CPU time in clock ticks (user and system, with that of children reaped), peak RSS and
/// current RSS in KiB, summed over the processes `pids` (a milter made of several processes:
/// pass them all; peaks are summed, an upper bound).
fn proc_usage(pids: &[u32]) -> Option<(u64, u64, u64)> {
    let mut total = (0, 0, 0);
    let one = |pid: u32| -> Option<(u64, u64, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = f.get(11..15)?.iter().map(|v| v.parse::<u64>().unwrap_or(0)).sum();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| -> Option<u64> {
            status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
        };
        Some((ticks, kib("VmHWM:")?, kib("VmRSS:")?))
    };
    // A process that has gone (a recycled worker) is skipped; its parent counts its CPU.
    for usage in pids.iter().filter_map(|&pid| one(pid)) {
        total.0 += usage.0;
        total.1 += usage.1;
        total.2 += usage.2;
    }
    (!pids.is_empty()).then_some(total)
}

fn main() {
    let args = parse();
    if let Some(config) = &args.engine {
        return engine(&args, config);
    }
    // One thread drives every connection (its CPU is CPU the milter under test does not get
    // on a shared machine, and one thread makes fewer wakeups); with --null the in-process
    // server shares the runtime and gets the machine's cores.
    let rt = match args.null {
        true => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        false => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    }
    .unwrap();
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let messages = Arc::new(corpus(&args));
    let bytes_per_round: usize = messages.iter().map(Message::size).sum();
    let mut self_server = None;
    let (addr, pid) = if args.null {
        // The in-process server listens where --addr says (unix sockets cost both ends less
        // than loopback TCP), by default on a free loopback port.
        let at = args.addr.clone().unwrap_or_else(|| "inet:127.0.0.1:0".parse().unwrap());
        let listener = Listener::bind(&at, 0o660).await.unwrap_or_else(|e| panic!("{e}"));
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
            inflight_bytes: 256 << 20,
            spool_dir: std::env::temp_dir(),
        };
        let task = tokio::spawn(server::run(vec![listener], filters, opts, prx));
        self_server = Some((ptx, task, _ftx));
        (addr, vec![std::process::id()])
    } else {
        (args.addr.clone().unwrap(), args.pids.clone())
    };
    let idle = open_idle(&addr, args.idle, &pid).await;
    let me = [std::process::id()];
    let client_before = proc_usage(&me);
    let before = proc_usage(&pid);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (addr, messages, next) = (addr.clone(), Arc::clone(&messages), Arc::clone(&next));
        let (total, per_conn) = (args.messages, args.per_connection.max(1));
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            'outer: loop {
                if next.load(Ordering::Relaxed) >= total {
                    break;
                }
                let Ok(mut c) = Client::connect(&addr, Duration::from_secs(30)).await else {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if Instant::now() > deadline {
                        break;
                    }
                    continue;
                };
                if c.negotiate(POSTFIX_OFFER).await.is_err()
                    || c.open("192.0.2.1", "load.example").await.is_err()
                {
                    tally.errors += 1;
                    if Instant::now() > deadline {
                        break;
                    }
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
                            tally.latencies.push(t.elapsed());
                            tally.modifications += out.modifications.len();
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
                            *tally.decisions.entry(d).or_default() += 1;
                        }
                        Err(_) => {
                            tally.errors += 1;
                            continue 'outer;
                        }
                    }
                    if c.abort().await.is_err() {
                        continue 'outer;
                    }
                }
                let _ = c.quit().await;
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for t in tasks {
        tally.merge(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let after = proc_usage(&pid);
    let client_after = proc_usage(&me);
    let avg_bytes = bytes_per_round as f64 / messages.len() as f64;
    let target = format!("{}{}", addr, if args.null { " (in-process null filter)" } else { "" });
    let note = if args.null { " (this process: client and server)" } else { "" };
    let messages_done = tally.latencies.len();
    print_report(&target, args.concurrency, tally, elapsed, avg_bytes, before.zip(after), note);
    if let (false, Some((c0, _, _)), Some((c1, _, _))) = (args.null, client_before, client_after) {
        // On a machine the milter shares, this is CPU the milter did not get.
        let cpu_ms = c1.saturating_sub(c0) as f64 / 100.0 * 1000.0;
        println!(
            "client cpu        {:.3} ms/message (this load generator)",
            cpu_ms / messages_done.max(1) as f64
        );
    }
    drop(idle);
    if let Some((ptx, task, _f)) = self_server {
        let _ = ptx.send(Phase::Stop);
        let _ = task.await;
    }
}

/// What the clients (or engine threads) saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    decisions: BTreeMap<&'static str, usize>,
    modifications: usize,
    errors: usize,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (k, v) in other.decisions {
            *self.decisions.entry(k).or_default() += v;
        }
        self.modifications += other.modifications;
        self.errors += other.errors;
    }
}

type Usage = (u64, u64, u64);

fn print_report(
    target: &str,
    concurrency: usize,
    mut tally: Tally,
    elapsed: Duration,
    avg_bytes: f64,
    usage: Option<(Usage, Usage)>,
    note: &str,
) {
    let elapsed = elapsed.as_secs_f64();
    let lat = &mut tally.latencies;
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| {
        lat.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!("target            {target}");
    println!("concurrency       {concurrency}");
    println!("messages          {n} in {elapsed:.2}s ({} errors)", tally.errors);
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
    println!("decisions         {:?}", tally.decisions);
    println!("modifications     {}", tally.modifications);
    if let Some(((t0, _, _), (t1, hwm, _))) = usage {
        let tick = 100.0; // USER_HZ on Linux
        let cpu_ms = t1.saturating_sub(t0) as f64 / tick * 1000.0;
        println!("server cpu        {:.3} ms/message{note}", cpu_ms / n.max(1) as f64);
        println!("server peak rss   {:.1} MB{note}", hwm as f64 / 1024.0);
    }
}

/// Opens `count` connections that negotiate and say HELO, then stay idle, and reports the
/// server's RSS before and after. They are held until the returned value is dropped.
async fn open_idle(addr: &ListenAddr, count: usize, pid: &[u32]) -> Vec<Client> {
    if count == 0 {
        return Vec::new();
    }
    let rss = || proc_usage(pid).map_or(0.0, |u| u.2 as f64 / 1024.0);
    let before = rss();
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        let Ok(mut c) = Client::connect(addr, Duration::from_secs(10)).await else { break };
        if c.negotiate(POSTFIX_OFFER).await.is_ok() && c.open("192.0.2.1", "idle.example").await.is_ok() {
            open.push(c);
        }
    }
    // Let the server finish setting up the last ones before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "idle connections  {} open: server rss {:.1} MB (before them {:.1} MB)",
        open.len(),
        rss(),
        before
    );
    open
}

/// A message as the daemon holds it at end of message: header fields as the MTA passes them,
/// CRLF line ends, then the body.
fn as_received(m: &Message) -> EndOfMessage {
    let mut raw = Vec::with_capacity(m.body.len() + 4096);
    for (name, value) in &m.headers {
        raw.extend_from_slice(name);
        raw.extend_from_slice(b": ");
        inspect_milter::milter::session::push_crlf_normalised(&mut raw, value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(&m.body);
    let envelope = Envelope {
        client: EnvelopeClient {
            name: "unknown".into(),
            addr: Some("192.0.2.1".into()),
            ..Default::default()
        },
        helo: Some("load.example".into()),
        sender: m.sender.clone(),
        recipients: m.recipients.clone(),
        ..Default::default()
    };
    let received_bytes = raw.len() as u64;
    EndOfMessage {
        envelope,
        message: raw,
        truncated: false,
        received_bytes,
        arrived: std::time::Instant::now(),
    }
}

/// The daemon's filter of `config`, run in this process on `inspect.threads` threads over the
/// corpus: the same work the daemon does at end of message, without the protocol.
fn engine(args: &Args, config: &std::path::Path) {
    // The daemon's allocator settings, so the comparison with it is of the protocol only.
    inspect_milter::memory::tune_allocator();
    let config = Config::load(config).unwrap_or_else(|e| panic!("{e}"));
    let (pipeline, _) = Pipeline::load(&config).unwrap_or_else(|e| panic!("{e}"));
    let filter = InspectFilter::open(pipeline, &config).unwrap_or_else(|e| panic!("{e}"));
    let messages: Vec<EndOfMessage> = corpus(args).iter().map(as_received).collect();
    let avg_bytes = messages.iter().map(|m| m.message.len()).sum::<usize>() as f64 / messages.len() as f64;
    let threads = config.inspect.threads.max(1);
    let next = AtomicUsize::new(0);
    let before = proc_usage(&[std::process::id()]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut tally = Tally::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.messages || Instant::now() > deadline {
                            break tally;
                        }
                        let t = Instant::now();
                        match filter.end_of_message(&messages[i % messages.len()]) {
                            Ok(v) => {
                                tally.latencies.push(t.elapsed());
                                tally.modifications += v.headers.len();
                                let d = match v.action {
                                    Action::Accept => "accept",
                                    Action::Quarantine(_) => "quarantine",
                                    Action::Discard => "discard",
                                    Action::Reject(_) | Action::Tempfail(_) => "reject/tempfail",
                                };
                                *tally.decisions.entry(d).or_default() += 1;
                            }
                            Err(_) => tally.errors += 1,
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("an engine thread")).collect()
    });
    let mut tally = Tally::default();
    tallies.into_iter().for_each(|t| tally.merge(t));
    let elapsed = started.elapsed();
    let after = proc_usage(&[std::process::id()]);
    let target = format!("in-process engine ({threads} threads, no protocol)");
    print_report(&target, threads, tally, elapsed, avg_bytes, before.zip(after), " (this process)");
}
