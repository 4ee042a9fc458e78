//! The link owner's control protocol (`intercore up` and the commands that talk to it),
//! apart from the link, so that the parser, the bounds and the per-connection serving run
//! in tests and under the fuzzer (`fuzz/fuzz_targets/control.rs`) without a board.
//!
//! One request per connection: the client writes one JSON object on one line (at most
//! [`MAX_REQUEST`] bytes, complete within [`REQUEST_DEADLINE`] of connecting, however it
//! is trickled) and reads the answer: zero or more empty lines (a heartbeat, one every
//! [`HEARTBEAT`] while a job is queued or runs), then one JSON object on one line. The
//! heartbeat serves both ends: a client that hears nothing for [`IDLE_DEADLINE`] knows
//! the owner is stopped or hung, and an owner whose heartbeat cannot be written knows the
//! client has gone and cancels its job.
//!
//! Requests, every count bounded (an out-of-range or mistyped value, or an unknown key,
//! is an error answer that says the range):
//! `{"op":"status"}`, `{"op":"down"}`, `{"op":"ping","count":N}` (1..=[`LINK_COUNT_MAX`]),
//! `{"op":"echo","messages":N}` (1..=[`LINK_COUNT_MAX`]),
//! `{"op":"bench","suite":"rtt"|"throughput","samples":N}` (1..=[`SAMPLES_MAX`]),
//! `{"op":"bench","suite":"bulk","mib":N}` (1..=[`BULK_MIB_MAX`]).

use crate::{BULK_MIB_MAX, LINK_COUNT_MAX, SAMPLES_MAX};
use serde_json::{Map, Value, json};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest request line, in bytes (the longest valid request is under 100).
pub const MAX_REQUEST: usize = 4096;
/// Longest answer the client reads, heartbeat lines included.
pub const MAX_ANSWER: usize = 1 << 20;
/// How long the owner waits for a whole request line from a client, from its connecting.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How often the owner writes an empty line to a client whose job is queued or running.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long a client waits without hearing a byte from the owner before giving up.
pub const IDLE_DEADLINE: Duration = Duration::from_secs(5);

/// A `bench` suite the owner runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchSuite {
    /// Round-trip latency, `samples` per size.
    Rtt,
    /// Bursts, `samples` messages per size.
    Throughput,
    /// `mib` MiB through the zero-copy data plane.
    Bulk,
}

/// One request, parsed and within its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The owner's board, transport and pids; answered without the link.
    Status,
    /// Close the link and stop the owner.
    Down,
    /// `count` verified round trips.
    Ping {
        /// Round trips.
        count: u64,
    },
    /// Verified messages of every size (`None`: one of each).
    Echo {
        /// Messages.
        messages: Option<u64>,
    },
    /// A benchmark suite.
    Bench {
        /// Which.
        suite: BenchSuite,
        /// Samples (rtt, throughput) or MiB (bulk).
        n: u64,
    },
}

fn int(o: &Map<String, Value>, key: &str, default: u64, max: u64) -> Result<u64, String> {
    let Some(v) = o.get(key) else {
        return Ok(default);
    };
    match v.as_u64() {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{key} = {v}: expected an integer in 1..={max}")),
    }
}

fn only(o: &Map<String, Value>, op: &str, keys: &[&str]) -> Result<(), String> {
    match o
        .keys()
        .find(|k| k.as_str() != "op" && !keys.contains(&k.as_str()))
    {
        Some(k) => Err(format!(
            "unknown key {k:?} for op {op:?} (it takes {})",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        )),
        None => Ok(()),
    }
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let v: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(o) = &v else {
            return Err("expected one JSON object".into());
        };
        let op = match o.get("op") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(format!("op = {other}: expected a string")),
            None => return Err("no \"op\"".into()),
        };
        match op {
            "status" => only(o, op, &[]).map(|_| Request::Status),
            "down" => only(o, op, &[]).map(|_| Request::Down),
            "ping" => {
                only(o, op, &["count"])?;
                Ok(Request::Ping {
                    count: int(o, "count", 100, LINK_COUNT_MAX)?,
                })
            }
            "echo" => {
                only(o, op, &["messages"])?;
                let messages = match o.get("messages") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(int(o, "messages", 1, LINK_COUNT_MAX)?),
                };
                Ok(Request::Echo { messages })
            }
            "bench" => {
                let suite = match o.get("suite").and_then(Value::as_str) {
                    Some("rtt") => BenchSuite::Rtt,
                    Some("throughput") => BenchSuite::Throughput,
                    Some("bulk") => BenchSuite::Bulk,
                    _ => {
                        return Err(format!(
                            "suite = {}: expected \"rtt\", \"throughput\" or \"bulk\"",
                            o.get("suite").unwrap_or(&Value::Null)
                        ));
                    }
                };
                let n = if suite == BenchSuite::Bulk {
                    only(o, op, &["suite", "mib"])?;
                    int(o, "mib", 16, BULK_MIB_MAX)?
                } else {
                    only(o, op, &["suite", "samples"])?;
                    int(o, "samples", 1000, SAMPLES_MAX)?
                };
                Ok(Request::Bench { suite, n })
            }
            other => Err(format!(
                "unknown op {other:?} (status, down, ping, echo, bench)"
            )),
        }
    }

    /// The request's line (without its newline).
    pub fn to_json(&self) -> Value {
        match self {
            Request::Status => json!({ "op": "status" }),
            Request::Down => json!({ "op": "down" }),
            Request::Ping { count } => json!({ "op": "ping", "count": count }),
            Request::Echo { messages } => json!({ "op": "echo", "messages": messages }),
            Request::Bench {
                suite: BenchSuite::Bulk,
                n,
            } => json!({ "op": "bench", "suite": "bulk", "mib": n }),
            Request::Bench { suite, n } => json!({
                "op": "bench",
                "suite": if *suite == BenchSuite::Rtt { "rtt" } else { "throughput" },
                "samples": n,
            }),
        }
    }

    /// How long a client waits for the whole answer, heartbeats or not: the status is
    /// immediate, `down` closes the link (the owner gives the core 5 s), a job is bounded
    /// by its counts (the longest, 10 M round trips at a slow emulated core's 100 µs, is
    /// under 20 minutes).
    pub fn client_deadline(&self) -> Duration {
        match self {
            Request::Status => Duration::from_secs(10),
            Request::Down => Duration::from_secs(60),
            _ => Duration::from_secs(3600),
        }
    }
}

/// What the owner's connection handling needs of a connection: a byte stream whose reads
/// can be given a timeout. A Unix socket, or a scripted one in tests and the fuzzer.
pub trait Conn: Read + Write {
    /// As [`UnixStream::set_read_timeout`].
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()>;
}

impl Conn for UnixStream {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads one request line by `deadline` (the whole line, not each byte: a client that
/// trickles it runs out of time), at most [`MAX_REQUEST`] bytes.
pub fn read_request<C: Conn + ?Sized>(conn: &mut C, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no complete request line within {} s",
                REQUEST_DEADLINE.as_secs()
            ));
        }
        conn.set_read_timeout(Some(left))
            .map_err(|e| format!("reading the request: {e}"))?;
        match conn.read(&mut chunk) {
            Ok(0) if line.is_empty() => return Err("the client sent nothing".into()),
            Ok(0) => return Ok(line),
            Ok(n) => {
                line.extend_from_slice(&chunk[..n]);
                if let Some(i) = line.iter().position(|&b| b == b'\n') {
                    line.truncate(i);
                    return Ok(line);
                }
                if line.len() > MAX_REQUEST {
                    return Err(format!("request line longer than {MAX_REQUEST} bytes"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {
                return Err(format!(
                    "no complete request line within {} s",
                    REQUEST_DEADLINE.as_secs()
                ));
            }
            Err(e) => return Err(format!("reading the request: {e}")),
        }
    }
}

/// A request handed to the thread that holds the link.
pub struct Job {
    /// What to run.
    pub request: Request,
    /// Set when the client has gone: the job stops at its next message and its answer is
    /// dropped.
    pub stop: Arc<AtomicBool>,
    /// Where the answer goes (capacity 1: sending never blocks).
    pub reply: mpsc::SyncSender<Value>,
    /// Disconnects once the answer has been written (or the client has gone): `down`
    /// waits for it before the owner exits.
    pub written: mpsc::Receiver<()>,
}

impl Job {
    /// Whether the client has gone.
    pub fn stopped(&self) -> bool {
        // Relaxed: a standalone flag; nothing is published with it.
        self.stop.load(Ordering::Relaxed)
    }
}

fn write_line<C: Conn + ?Sized>(conn: &mut C, v: &Value) -> io::Result<()> {
    let mut line = v.to_string();
    line.push('\n');
    conn.write_all(line.as_bytes())?;
    conn.flush()
}

/// Serves one connection: reads its request (by [`REQUEST_DEADLINE`]), answers `status`
/// with `status` at once, hands any other request to `submit` (the link's thread; an
/// `Err` is the answer, e.g. "busy") and waits for its answer, writing a heartbeat every
/// [`HEARTBEAT`]; a heartbeat that cannot be written means the client has gone, and the
/// job is stopped. Returns the request, if one was read.
pub fn serve_connection<C: Conn + ?Sized>(
    conn: &mut C,
    status: &Value,
    submit: &mut dyn FnMut(Job) -> Result<(), String>,
) -> Option<Request> {
    let req = match read_request(conn, Instant::now() + REQUEST_DEADLINE)
        .and_then(|line| Request::parse(&line))
    {
        Ok(r) => r,
        Err(e) => {
            let _ = write_line(conn, &json!({ "error": format!("bad request: {e}") }));
            return None;
        }
    };
    if req == Request::Status {
        let _ = write_line(conn, status);
        return Some(req);
    }
    // A first heartbeat before the job is queued: a client that has already gone (it gave
    // up on a stopped owner, say) gets no job run for it, `down` included.
    if conn.write_all(b"\n").and_then(|_| conn.flush()).is_err() {
        return Some(req);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (reply, answer) = mpsc::sync_channel(1);
    let (written_tx, written) = mpsc::channel::<()>();
    let job = Job {
        request: req.clone(),
        stop: Arc::clone(&stop),
        reply,
        written,
    };
    if let Err(e) = submit(job) {
        let _ = write_line(conn, &json!({ "error": e }));
        return Some(req);
    }
    loop {
        match answer.recv_timeout(HEARTBEAT) {
            Ok(v) => {
                let _ = write_line(conn, &v);
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if conn.write_all(b"\n").and_then(|_| conn.flush()).is_err() {
                    // Relaxed: see Job::stopped.
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = write_line(
                    conn,
                    &json!({ "error": "the link owner dropped the request without an answer (see its log)" }),
                );
                break;
            }
        }
    }
    drop(written_tx);
    Some(req)
}

/// Reads the owner's answer: skips heartbeat lines, returns the first JSON line. Fails
/// when nothing at all arrives for [`IDLE_DEADLINE`] (the owner is stopped or hung), when
/// the whole answer takes longer than `deadline`, or when the owner closes without one.
/// `progress` is called about once a second with the time waited so far.
pub fn read_answer(
    s: &mut UnixStream,
    deadline: Duration,
    progress: &mut dyn FnMut(Duration),
) -> Result<Value, String> {
    let t = Instant::now();
    let mut last_byte = t;
    let mut last_progress = t;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Heartbeat lines before the answer are dropped as they come.
        let blank = buf.iter().take_while(|&&b| b == b'\n').count();
        buf.drain(..blank);
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..i]);
            return serde_json::from_str(line.trim())
                .map_err(|e| format!("the link owner's answer is not JSON: {e}"));
        }
        if buf.len() > MAX_ANSWER {
            return Err(format!(
                "the link owner's answer is longer than {MAX_ANSWER} bytes"
            ));
        }
        let now = Instant::now();
        if now.duration_since(t) >= deadline {
            return Err(format!(
                "the link owner did not answer within {} s",
                deadline.as_secs()
            ));
        }
        if now.duration_since(last_byte) >= IDLE_DEADLINE {
            return Err(format!(
                "the link owner has sent nothing for {} s: it is stopped or hung (see its log; `kill -CONT` a stopped owner, or kill it and run `intercore up` again)",
                IDLE_DEADLINE.as_secs()
            ));
        }
        if now.duration_since(last_progress) >= Duration::from_secs(1) {
            last_progress = now;
            progress(now.duration_since(t));
        }
        let wait = Duration::from_millis(200)
            .min(deadline.saturating_sub(now.duration_since(t)))
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(wait))
            .map_err(|e| format!("reading the link owner's answer: {e}"))?;
        match s.read(&mut chunk) {
            Ok(0) if buf.iter().all(|&b| b == b'\n') => {
                return Err(
                    "the link owner closed the connection without an answer (it may have died: see its log)"
                        .into(),
                );
            }
            Ok(0) => {
                // An answer without its newline.
                buf.push(b'\n');
            }
            Ok(n) => {
                last_byte = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(format!("reading the link owner's answer: {e}")),
        }
    }
}

/// A scripted connection for the fuzzer and tests: reads come from `input` (then end of
/// file), writes go to `output`, timeouts are accepted and ignored.
#[derive(Debug, Default)]
pub struct ScriptedConn {
    /// What the client sends.
    pub input: Vec<u8>,
    /// How much of `input` has been read.
    pub at: usize,
    /// What the owner wrote.
    pub output: Vec<u8>,
}

impl Read for ScriptedConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.at.min(self.input.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for ScriptedConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Conn for ScriptedConn {
    fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// The fuzz target `control`: `data` as what one client sends, served with a job thread
/// that answers at once. Checks that every request that reaches the job thread is within
/// its bounds, and that exactly one answer line (a JSON object) comes back.
pub fn fuzz_one(data: &[u8]) {
    let mut conn = ScriptedConn {
        input: data.to_vec(),
        ..ScriptedConn::default()
    };
    let status = json!({ "board": "fuzz" });
    let mut submit = |job: Job| -> Result<(), String> {
        match job.request {
            Request::Ping { count } => assert!((1..=LINK_COUNT_MAX).contains(&count)),
            Request::Echo { messages } => {
                assert!(messages.is_none_or(|m| (1..=LINK_COUNT_MAX).contains(&m)))
            }
            Request::Bench {
                suite: BenchSuite::Bulk,
                n,
            } => assert!((1..=BULK_MIB_MAX).contains(&n)),
            Request::Bench { n, .. } => assert!((1..=SAMPLES_MAX).contains(&n)),
            Request::Status | Request::Down => {}
        }
        // A request survives its own round trip through JSON.
        let again = Request::parse(job.request.to_json().to_string().as_bytes());
        assert_eq!(again.as_ref(), Ok(&job.request));
        job.reply
            .send(json!({ "op": job.request.to_json()["op"] }))
            .map_err(|e| e.to_string())
    };
    let _ = serve_connection(&mut conn, &status, &mut submit);
    let out = String::from_utf8(conn.output).expect("the owner writes UTF-8");
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let v: Value = serde_json::from_str(lines[0]).expect("the answer is JSON");
    assert!(v.is_object());
    assert!(conn.at <= data.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count of issue 20.7's request is refused with the range, before any job; the
    /// defaults and every bound hold; unknown keys and ops are named.
    #[test]
    fn requests_are_bounded() {
        let e = Request::parse(br#"{"op":"ping","count":18446744073709551615}"#).unwrap_err();
        assert!(e.contains("1..=10000000"), "{e}");
        for bad in [
            &br#"{"op":"ping","count":0}"#[..],
            br#"{"op":"ping","count":-1}"#,
            br#"{"op":"ping","count":1.5}"#,
            br#"{"op":"ping","count":"5"}"#,
            br#"{"op":"echo","messages":10000001}"#,
            br#"{"op":"bench","suite":"bulk","mib":1000000}"#,
            br#"{"op":"bench","suite":"rtt","samples":100000000}"#,
            br#"{"op":"bench","suite":"x"}"#,
            br#"{"op":"ping","cuont":5}"#,
            br#"{"op":"nope"}"#,
            br#"[1]"#,
            br#"{"op":1}"#,
        ] {
            assert!(
                Request::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            Request::parse(br#"{"op":"ping"}"#),
            Ok(Request::Ping { count: 100 })
        );
        assert_eq!(
            Request::parse(br#"{"op":"echo","messages":null}"#),
            Ok(Request::Echo { messages: None })
        );
        assert_eq!(
            Request::parse(br#"{"op":"bench","suite":"bulk"}"#),
            Ok(Request::Bench {
                suite: BenchSuite::Bulk,
                n: 16
            })
        );
    }

    /// An over-long line is refused once it passes the cap, without reading the rest.
    #[test]
    fn long_request_lines_are_refused() {
        let mut c = ScriptedConn {
            input: vec![b' '; 1 << 20],
            ..ScriptedConn::default()
        };
        let e = read_request(&mut c, Instant::now() + REQUEST_DEADLINE).unwrap_err();
        assert!(e.contains("longer than"), "{e}");
        assert!(c.at <= MAX_REQUEST + 512, "{}", c.at);
    }

    /// The fuzz body on a few inputs (the corpus replays in tests/control_fuzz_corpus.rs).
    #[test]
    fn fuzz_body_runs() {
        for d in [
            &b""[..],
            b"\n",
            b"{\"op\":\"status\"}\n",
            b"{\"op\":\"down\"}",
            b"{\"op\":\"ping\",\"count\":3}\ntrailing",
            b"\xff\xfe",
        ] {
            fuzz_one(d);
        }
    }
}
