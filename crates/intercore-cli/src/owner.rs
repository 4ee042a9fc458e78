//! `intercore up`, `down`, `ping`, `echo` and `bench --board`: a board's link, held by a
//! link owner between commands (sim, qemu) or by the kernel (kernel boards).
//!
//! Why an owner: the rings, buffers and the simulator or QEMU child live in one process,
//! and virtio has no way for a second process to attach to a live driver (a new driver
//! resets the device). So `up` starts a process that opens the link ([`Board::open`]) and
//! keeps it, serving a control socket; the other commands connect and ask it to run their
//! job over its link, and it does the timing. docs/ARCHITECTURE.md ("Who owns a link").
//!
//! The control socket: `$XDG_RUNTIME_DIR/intercore/` (else `$HOME/.cache/intercore/run/`,
//! else `/tmp/intercore-UID/`; `runtime_dir`), a directory of mode 0700 owned by us
//! (anything else is refused), the socket named after
//! the board file's canonical path (`<stem>-<hash>.sock`) with the owner's pid beside it
//! (`.pid`) and its log (`.log`). One request per connection, one JSON object per line each
//! way: the protocol, its bounds and deadlines are [`crate::control`]'s. Clients are
//! served concurrently (a thread per connection, at most [`MAX_CLIENTS`]): the status is
//! answered at once by the connection's thread; jobs and `down` queue (at most
//! [`JOB_QUEUE`]) for the one thread that holds the link, which stops a job whose client
//! has gone. `down` stops the running job too.

pub mod jobs;

use crate::control::{self, BenchSuite, Job, Request};
use crate::error::CliError;
use crate::{BenchArgs, BoardArg, EXIT_FAILED, EXIT_OK, EchoArgs, PingArgs, Suite, UpArgs};
use intercore_board::{Board, BoardFile, Link, OpenEnv, TransportSpec};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest line `up` reads from the owner it starts.
pub const MAX_LINE: u64 = 1 << 20;
/// Connections the owner serves at once; one more is told the owner is busy.
pub const MAX_CLIENTS: usize = 16;
/// Jobs (and `down`) waiting for the link; one more is told the owner is busy.
pub const JOB_QUEUE: usize = 8;
/// How long the owner's write of an answer or heartbeat may block on a client that does
/// not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The hidden flag with which `up` starts the owner in the background
/// ([`UpArgs::daemon_child`]): it then reports readiness on stdout (one line) and prints
/// nothing else there.
const DAEMON_FLAG: &str = "--daemon-child";
/// How much longer than the board's ready timeout `up` waits for the owner's line: QEMU or
/// the simulated SoC starting, the owner's own start.
const UP_MARGIN: Duration = Duration::from_secs(30);

/// The files of one board's owner.
struct Place {
    sock: PathBuf,
    pid: PathBuf,
    log: PathBuf,
}

fn uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// The runtime directory: `$XDG_RUNTIME_DIR/intercore` (the session's own directory),
/// else `$HOME/.cache/intercore/run` (in the user's home, where no other user can create
/// it first: a fixed name in the shared `/tmp`, which this used, let any local user block
/// `up` for good by creating it), else, with neither set, `/tmp/intercore-UID`. Created
/// with mode 0700 if missing; refused unless it is a directory owned by us that nobody
/// else may enter, with an error that says what to do.
fn runtime_dir() -> Result<PathBuf, CliError> {
    let var = |k: &str| std::env::var_os(k).filter(|d| !d.is_empty());
    let (dir, from) = match (var("XDG_RUNTIME_DIR"), var("HOME")) {
        (Some(d), _) => (PathBuf::from(d).join("intercore"), "XDG_RUNTIME_DIR"),
        (None, Some(h)) => (PathBuf::from(h).join(".cache/intercore/run"), "HOME"),
        (None, None) => (
            std::env::temp_dir().join(format!("intercore-{}", uid())),
            "neither XDG_RUNTIME_DIR nor HOME is set",
        ),
    };
    match std::fs::DirBuilder::new()
        .recursive(from == "HOME")
        .mode(0o700)
        .create(&dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(CliError::at(&dir, format!("{}: {e}", dir.display()))),
    }
    let m = std::fs::symlink_metadata(&dir)
        .map_err(|e| CliError::at(&dir, format!("{}: {e}", dir.display())))?;
    if !m.is_dir() || m.uid() != uid() || m.permissions().mode() & 0o077 != 0 {
        let what = if m.file_type().is_symlink() {
            "a symbolic link"
        } else if m.is_dir() {
            "a directory"
        } else {
            "not a directory"
        };
        let todo = if m.uid() != uid() {
            format!(
                "it is not yours (another user may have created it to block this); set XDG_RUNTIME_DIR to a directory of your own{}",
                if from == "XDG_RUNTIME_DIR" {
                    ""
                } else {
                    " (or HOME)"
                }
            )
        } else {
            format!("`chmod 700 {}`, or remove it", dir.display())
        };
        return Err(CliError::at(
            &dir,
            format!(
                "{}: the control-socket directory must be a directory owned by uid {} with mode 0700 (it is {what}, uid {}, mode {:o}; chosen because {}): {todo}",
                dir.display(),
                uid(),
                m.uid(),
                m.permissions().mode() & 0o7777,
                if from.contains(' ') {
                    from.to_string()
                } else {
                    format!("{from} is set")
                },
            ),
        ));
    }
    Ok(dir)
}

/// FNV-1a, 64 bits: a stable short name for a path (not a security boundary: the directory
/// is ours alone).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The owner's files: named after the board file, and after the core for a file with
/// several (`core` is `Some` only then, see [`load`]).
fn place(board_file: &Path, core: Option<&str>) -> Result<Place, CliError> {
    let canon = std::fs::canonicalize(board_file)
        .map_err(|e| CliError::at(board_file, format!("{}: {e}", board_file.display())))?;
    let stem: String = canon
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    // A core of a file with several: its name (validated: ASCII letters, digits, '-', '_')
    // in the hash, and its first 16 characters after the stem, so that the socket's path
    // stays far below the 108 bytes a Unix socket address holds.
    let mut key = canon.as_os_str().as_encoded_bytes().to_vec();
    let mut label = stem;
    if let Some(c) = core {
        key.push(0);
        key.extend_from_slice(c.as_bytes());
        label.push('-');
        label.extend(c.chars().take(16));
    }
    let base = format!("{label}-{:016x}", fnv1a(&key));
    let dir = runtime_dir()?;
    Ok(Place {
        sock: dir.join(format!("{base}.sock")),
        pid: dir.join(format!("{base}.pid")),
        log: dir.join(format!("{base}.log")),
    })
}

/// The board of core `core` of the file (`None`: its only core; with several, an error
/// naming them), and the core's name when the file names several (then the board's name
/// says which core too).
fn load(board: &Path, core: Option<&str>) -> Result<(Board, Option<String>), CliError> {
    let f = BoardFile::from_file(board).map_err(|e| CliError::at(board, e.to_string()))?;
    let c = f.core(core).map_err(|e| CliError {
        option: Some("--core".into()),
        ..CliError::at(board, format!("{}: {e}", board.display()))
    })?;
    if !f.is_multi() {
        return Ok((c.board.clone(), None));
    }
    let mut b = c.board.clone();
    b.name = format!("{} / {}", f.name, c.name);
    Ok((b, Some(c.name.clone())))
}

/// Without `--core`, a file with several cores: their names (`None`: one core, or one
/// named).
fn all_cores(board: &Path, core: Option<&str>) -> Result<Option<Vec<String>>, CliError> {
    if core.is_some() {
        return Ok(None);
    }
    let f = BoardFile::from_file(board).map_err(|e| CliError::at(board, e.to_string()))?;
    Ok(f.is_multi()
        .then(|| f.cores.iter().map(|c| c.name.clone()).collect()))
}

/// Runs `f` on each core in turn: a core's error is reported (as the command's errors
/// are) and the others still run; the status is the first failure's, else 0.
fn each_core(
    cmd: &str,
    names: &[String],
    json_out: bool,
    f: impl Fn(&str) -> Result<u8, CliError>,
) -> Result<u8, CliError> {
    let mut status = EXIT_OK;
    for n in names {
        let code = match f(n) {
            Ok(c) => c,
            Err(e) if e.quiet => return Err(e),
            Err(e) => {
                e.report(cmd, json_out);
                e.code
            }
        };
        if status == EXIT_OK {
            status = code;
        }
    }
    Ok(status)
}

/// `--board FILE`, and `--core NAME` when the file names several cores.
fn board_args(board: &Path, core: Option<&str>) -> String {
    match core {
        Some(c) => format!("--board {} --core {c}", board.display()),
        None => format!("--board {}", board.display()),
    }
}

/// Whether the board's link is held by an owner process (not the kernel).
fn owned(b: &Board) -> bool {
    !matches!(b.transport, TransportSpec::Kernel { .. })
}

fn open_env() -> OpenEnv {
    OpenEnv {
        sim_remote: crate::sim_remote().ok(),
        sim_firmwares: crate::firmwares::sim(),
        ..OpenEnv::default()
    }
}

/// What connecting to the owner found.
enum Owner {
    /// Listening.
    Up(UnixStream),
    /// No socket: never started, or stopped.
    None,
    /// A socket nobody listens on: the owner died.
    Dead(String),
}

fn recorded_pid(p: &Place) -> Option<u32> {
    std::fs::read_to_string(&p.pid).ok()?.trim().parse().ok()
}

fn connect(p: &Place) -> Result<Owner, CliError> {
    match std::fs::symlink_metadata(&p.sock) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Owner::None),
        Err(e) => return Err(CliError::at(&p.sock, format!("{}: {e}", p.sock.display()))),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(CliError::at(
                &p.sock,
                format!(
                    "{}: exists and is not a socket; not ours to use or remove",
                    p.sock.display()
                ),
            ));
        }
        Ok(_) => {}
    }
    match UnixStream::connect(&p.sock) {
        Ok(s) => Ok(Owner::Up(s)),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            let pid = recorded_pid(p);
            let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            Ok(Owner::Dead(format!(
                "the link owner{} is gone{} (its socket {} is left, nobody listens; its log is {})",
                pid.map_or(String::new(), |p| format!(" (pid {p})")),
                if alive { " or stopped serving" } else { "" },
                p.sock.display(),
                p.log.display()
            )))
        }
        Err(e) => Err(CliError::at(
            &p.sock,
            format!("{}: connecting to the link owner: {e}", p.sock.display()),
        )),
    }
}

/// Sends one request and reads the answer (by the request's deadline, and giving up when
/// the owner sends nothing, not even its heartbeat, for [`control::IDLE_DEADLINE`]),
/// showing progress on a terminal.
fn request(
    mut s: UnixStream,
    req: &Request,
    what: &str,
    json_out: bool,
) -> Result<Value, CliError> {
    let mut line = req.to_json().to_string();
    line.push('\n');
    let _ = s.set_write_timeout(Some(control::IDLE_DEADLINE));
    s.write_all(line.as_bytes())
        .map_err(|e| CliError::failed(format!("sending the request to the link owner: {e}")))?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let progress = !json_out && std::io::stderr().is_terminal();
    let mut shown = false;
    let r = control::read_answer(&mut s, req.client_deadline(), &mut |waited| {
        if progress {
            shown = true;
            diag!("\r{what}: {} s", waited.as_secs());
        }
    });
    if shown {
        diag!("\r{:<60}\r", "");
    }
    r.map_err(CliError::failed)
}

fn no_owner(board: &Path, core: Option<&str>) -> CliError {
    CliError::at(
        board,
        format!(
            "no link is up for board {b}{c}: run `intercore up {a}`",
            b = board.display(),
            c = core.map_or(String::new(), |c| format!(" core {c}")),
            a = board_args(board, core)
        ),
    )
}

/// Runs `req` on the board's link: through its owner, or (kernel boards) here.
fn run_job(
    board_file: &Path,
    core: Option<&str>,
    req: Request,
    what: &str,
    json_out: bool,
) -> Result<(Board, Value), CliError> {
    let (b, core) = load(board_file, core)?;
    let core = core.as_deref();
    let mut v = run_job_on(board_file, core, &b, req, what, json_out)?;
    if let (Some(c), Value::Object(m)) = (core, &mut v) {
        m.insert("core".into(), json!(c));
    }
    Ok((b, v))
}

fn run_job_on(
    board_file: &Path,
    core: Option<&str>,
    b: &Board,
    req: Request,
    what: &str,
    json_out: bool,
) -> Result<Value, CliError> {
    if !owned(b) {
        let mut link = b
            .open_with(open_env())
            .map_err(|e| CliError::at(board_file, format!("{}: {e}", board_file.display())))?;
        let v = serve_one(&mut link, &mut jobs::Session::default(), b, &req, &|| false);
        let _ = link.shut_down(Duration::from_secs(1));
        return Ok(v);
    }
    let p = place(board_file, core)?;
    match connect(&p)? {
        Owner::Up(s) => request(s, &req, what, json_out),
        Owner::None => Err(no_owner(board_file, core)),
        Owner::Dead(why) => Err(CliError::at(
            board_file,
            format!(
                "no link is up for board {b}{c}: {why}; run `intercore up {a}` (it replaces the stale socket)",
                b = board_file.display(),
                c = core.map_or(String::new(), |c| format!(" core {c}")),
                a = board_args(board_file, core)
            ),
        )),
    }
}

/// One job on `link` (its counts are bounded by [`Request::parse`]); `stop` ends it early.
fn serve_one(
    link: &mut Link,
    session: &mut jobs::Session,
    b: &Board,
    req: &Request,
    stop: jobs::Stop,
) -> Value {
    let service = jobs::service(b);
    let mut v = match *req {
        Request::Ping { count } => jobs::ping(link, &service, count, stop),
        Request::Echo { messages } => jobs::echo(link, &service, messages, stop),
        Request::Bench {
            suite: BenchSuite::Rtt,
            n,
        } => jobs::bench_rtt(link, &service, n, stop),
        Request::Bench {
            suite: BenchSuite::Throughput,
            n,
        } => jobs::bench_throughput(link, &service, n, stop),
        Request::Bench {
            suite: BenchSuite::Bulk,
            n,
        } => jobs::bench_bulk(link, session, b, n, stop),
        Request::Status => json!({}),
        Request::Down => json!({ "error": "down is the owner's to serve" }),
    };
    decorate(&mut v, b, link);
    v
}

/// Adds the board, transport and pids to an answer.
fn decorate(v: &mut Value, b: &Board, link: &Link) {
    if let Value::Object(m) = v {
        m.insert("board".into(), json!(b.name));
        m.insert("transport".into(), json!(link.transport_name()));
        m.insert("owner_pid".into(), json!(std::process::id()));
        if let Some(pid) = link.child_pid() {
            m.insert("core_pid".into(), json!(pid));
        }
    }
}

/// `intercore up`.
///
/// A file with several cores and no `--core`: every core in file order, each by its own
/// `up --core NAME` (a link owner process per core), a core that fails to come up reported
/// without stopping the others.
pub fn up(a: &UpArgs, json_out: bool) -> Result<u8, CliError> {
    let daemon_child = a.daemon_child;
    if let Some(names) = all_cores(&a.board, a.core.as_deref())? {
        if a.foreground {
            return Err(CliError {
                option: Some("--foreground".into()),
                ..CliError::at(
                    &a.board,
                    format!(
                        "{}: a foreground owner serves one core; name it with --core ({})",
                        a.board.display(),
                        names.join(", ")
                    ),
                )
            });
        }
        return each_core("up", &names, json_out, |n| {
            up(
                &UpArgs {
                    core: Some(n.to_string()),
                    ..a.clone()
                },
                json_out,
            )
        });
    }
    let (b, core) = load(&a.board, a.core.as_deref())?;
    let ready_timeout = a.timeout.unwrap_or(b.ready_timeout);
    if !owned(&b) {
        return up_kernel(a, &b, ready_timeout, json_out);
    }
    let p = place(&a.board, core.as_deref())?;
    if let Owner::Up(s) = connect(&p)? {
        return already_up(a, &b, &p, s, json_out);
    }
    if a.foreground || daemon_child {
        return own(&b, &a.board, &p, daemon_child, json_out, ready_timeout);
    }
    let ready = start_owner(a, core.as_deref(), &p, ready_timeout)?;
    if json_out {
        outln!("{ready}")?;
    } else {
        outln!(
            "{}: up ({} transport), link owner pid {}{}; control socket {}",
            b.name,
            ready["transport"].as_str().unwrap_or("?"),
            ready["owner_pid"],
            ready
                .get("core_pid")
                .and_then(Value::as_u64)
                .map_or(String::new(), |c| format!(", core pid {c}")),
            p.sock.display()
        )?;
    }
    Ok(EXIT_OK)
}

/// `up` on a kernel board: the kernel owns the link; bring the core up and wait for its
/// control device.
fn up_kernel(
    a: &UpArgs,
    b: &Board,
    ready_timeout: Duration,
    json_out: bool,
) -> Result<u8, CliError> {
    let link = b
        .open_with(OpenEnv {
            ready_timeout,
            ..open_env()
        })
        .map_err(|e| CliError::at(&a.board, format!("{}: {e}", a.board.display())))?;
    let _ = link.shut_down(Duration::from_secs(1));
    if json_out {
        outln!(
            "{}",
            json!({ "board": b.name, "transport": "kernel", "up": true, "owner": "kernel" })
        )?;
    } else {
        outln!(
            "{}: up (kernel transport): the core is running and its rpmsg control device is there; ping/echo/bench open their own endpoints",
            b.name
        )?;
    }
    Ok(EXIT_OK)
}

/// `up` on a board whose owner already runs: say so, naming it.
fn already_up(
    a: &UpArgs,
    b: &Board,
    p: &Place,
    s: UnixStream,
    json_out: bool,
) -> Result<u8, CliError> {
    let st = request(s, &Request::Status, "status", true).map_err(|e| {
        CliError::at(
            &a.board,
            format!(
                "{}: a link owner listens on {} but did not answer its status: {} (its log is {})",
                a.board.display(),
                p.sock.display(),
                e.message,
                p.log.display()
            ),
        )
    })?;
    let pid = st.get("owner_pid").and_then(Value::as_u64);
    if json_out {
        outln!(
            "{}",
            json!({ "board": b.name, "up": true, "already": true, "owner_pid": pid, "socket": p.sock })
        )?;
    } else {
        outln!(
            "{}: already up (link owner pid {}, socket {})",
            b.name,
            pid.map_or("?".into(), |p| p.to_string()),
            p.sock.display()
        )?;
    }
    Ok(EXIT_OK)
}

/// Starts the owner in the background, in its own process group (a ^C at this terminal
/// does not reach it), its stderr to the log; it says "ready" on stdout once the link is
/// up, and that line is returned. The log is ours, in our directory: replaced as the same
/// regular file, never written through a link planted there (or into a FIFO, or a file
/// with other hard links).
fn start_owner(
    a: &UpArgs,
    core: Option<&str>,
    p: &Place,
    ready_timeout: Duration,
) -> Result<Value, CliError> {
    use std::os::unix::process::CommandExt;
    let (log, _) =
        intercore_linux::file::create_output(&p.log, intercore_linux::file::Existing::Replace)
            .map_err(|e| CliError::at(&p.log, e.to_string()))?;
    let exe =
        crate::program().map_err(|e| CliError::failed(format!("finding this program: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("up").arg("--board").arg(&a.board);
    if let Some(c) = core {
        cmd.arg("--core").arg(c);
    }
    let mut child = cmd
        .arg(DAEMON_FLAG)
        .arg("--timeout")
        .arg(ready_timeout.as_secs_f64().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::failed(format!("starting the link owner: {e}")))?;
    let out = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out.take(MAX_LINE)).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(ready_timeout + UP_MARGIN)
        .unwrap_or_default();
    let ready: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
    if ready.get("ready").and_then(Value::as_bool) == Some(true) {
        return Ok(ready);
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&p.log).unwrap_or_default();
    // The owner's own message names the board file; otherwise its log's last line.
    let why = match ready.get("error").and_then(Value::as_str) {
        Some(e) => e.to_string(),
        None => format!(
            "{}: the link owner did not come up: {} (log {})",
            a.board.display(),
            log.lines().last().unwrap_or("it exited without saying why"),
            p.log.display()
        ),
    };
    Err(CliError::at(&a.board, why))
}

/// The link owner: opens the link, serves the control socket until `down`.
fn own(
    b: &Board,
    file: &Path,
    p: &Place,
    daemon: bool,
    json_out: bool,
    ready_timeout: Duration,
) -> Result<u8, CliError> {
    let report = |v: &Value| {
        if daemon {
            // The one line `up` waits for; nothing else goes to stdout.
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{v}");
            let _ = o.flush();
        }
    };
    intercore_linux::file::clear_stale_socket(&p.sock, "run `intercore down` for this board first")
        .map_err(|e| {
            let msg = e.to_string();
            report(&json!({ "error": msg }));
            CliError::at(&p.sock, msg)
        })?;
    let listener = UnixListener::bind(&p.sock).map_err(|e| {
        let msg = format!("{}: {e}", p.sock.display());
        report(&json!({ "error": msg }));
        CliError::at(&p.sock, msg)
    })?;
    let ours = std::fs::symlink_metadata(&p.sock)
        .map_err(|e| CliError::at(&p.sock, format!("{}: {e}", p.sock.display())))?;
    let remove_ours = || {
        if let Ok(m) = std::fs::symlink_metadata(&p.sock) {
            if m.file_type().is_socket() && m.dev() == ours.dev() && m.ino() == ours.ino() {
                let _ = std::fs::remove_file(&p.sock);
                let _ = std::fs::remove_file(&p.pid);
            }
        }
    };
    let _ = std::fs::write(&p.pid, format!("{}\n", std::process::id()));
    let mut link = match b.open_with(OpenEnv {
        ready_timeout,
        ..open_env()
    }) {
        Ok(l) => l,
        Err(e) => {
            remove_ours();
            let msg = format!("{}: {e}", file.display());
            report(&json!({ "error": msg }));
            return Err(CliError::at(file, msg));
        }
    };
    // Up only once the echo service answers.
    if let Err(e) = link.find_service(&jobs::service(b), Some(ready_timeout)) {
        remove_ours();
        // The firmware's console says why, if anything does: all of it to the owner's log,
        // its last lines in the message `up` prints.
        let console = link.console().unwrap_or_default();
        if !console.trim().is_empty() {
            diagln!("firmware console:\n{}", console.trim_end());
        }
        let msg = format!(
            "{}: the link opened but the service {:?} was not announced within {:.1} s (transport.ready_timeout_ms or up --timeout): {e}{}",
            file.display(),
            jobs::service(b),
            ready_timeout.as_secs_f64(),
            intercore_board::console_tail(&console, 6)
        );
        report(&json!({ "error": msg }));
        return Err(CliError::at(file, msg));
    }
    let ready = json!({
        "ready": true, "board": b.name, "transport": link.transport_name(),
        "owner_pid": std::process::id(), "core_pid": link.child_pid(), "socket": p.sock,
    });
    report(&ready);
    if !daemon {
        if json_out {
            outln!("{ready}")?;
        } else {
            outln!(
                "{}: up ({} transport), serving {} in the foreground until `intercore down --board {}`",
                b.name,
                link.transport_name(),
                p.sock.display(),
                file.display()
            )?;
        }
    }
    serve_jobs(link, b, listener, &remove_ours)
}

/// The owner's life once the link is up: runs each client's job on the link until a
/// `down` (the link closed, the socket removed) or until the clients' thread ends.
fn serve_jobs(
    mut link: Link,
    b: &Board,
    listener: UnixListener,
    remove_ours: &dyn Fn(),
) -> Result<u8, CliError> {
    let started = Instant::now();
    let mut session = jobs::Session::default();
    let mut status = json!({});
    decorate(&mut status, b, &link);
    let (jobs_rx, going_down) = serve_clients(listener, status);
    // Relaxed: a standalone flag (see serve_clients).
    let stop = |job: &Job| job.stopped() || going_down.load(Ordering::Relaxed);
    while let Ok(job) = jobs_rx.recv() {
        if job.request == Request::Down {
            drop(session);
            let console = link.console();
            let out = link.shut_down(Duration::from_secs(5));
            // The firmware's console goes to the owner's log.
            if let Some(c) = console.filter(|c| !c.trim().is_empty()) {
                diagln!("firmware console:\n{}", c.trim_end());
            }
            let v = match &out {
                Ok(how) => {
                    json!({ "down": true, "board": b.name, "core": how, "up_s": started.elapsed().as_secs_f64() })
                }
                Err(e) => json!({ "down": true, "board": b.name, "error": e.to_string() }),
            };
            // The socket goes before the answer: a command run right after `down` returns
            // must find no owner ("no link is up"), not connect to one that is exiting.
            remove_ours();
            let _ = job.reply.send(v);
            // Until the answer is written (the sender side is dropped then), at most 2 s.
            let _ = job.written.recv_timeout(Duration::from_secs(2));
            return Ok(if out.is_ok() { EXIT_OK } else { EXIT_FAILED });
        }
        if stop(&job) {
            let _ = job.reply.send(json!({ "error": "the link is going down" }));
            continue;
        }
        let v = serve_one(&mut link, &mut session, b, &job.request, &|| stop(&job));
        let _ = job.reply.send(v);
    }
    remove_ours();
    Ok(EXIT_OK)
}

/// Accepts clients on a thread of its own, each served by a thread of its own
/// ([`control::serve_connection`], at most [`MAX_CLIENTS`] at once); returns the queue of
/// jobs for the link's thread, and the flag a `down` request sets (it stops the running
/// and queued jobs).
fn serve_clients(listener: UnixListener, status: Value) -> (mpsc::Receiver<Job>, Arc<AtomicBool>) {
    let (tx, rx) = mpsc::sync_channel::<Job>(JOB_QUEUE);
    let status = Arc::new(status);
    let clients = Arc::new(AtomicUsize::new(0));
    let going_down = Arc::new(AtomicBool::new(false));
    let down_asked = Arc::clone(&going_down);
    let accept = move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
            // Relaxed: a counter of live connection threads; it orders nothing else.
            if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
                clients.fetch_sub(1, Ordering::Relaxed);
                let _ = writeln!(
                    s,
                    "{}",
                    json!({ "error": format!("the link owner is busy: {MAX_CLIENTS} clients are connected; try again") })
                );
                continue;
            }
            let (tx, status, live, going_down) = (
                tx.clone(),
                Arc::clone(&status),
                Arc::clone(&clients),
                Arc::clone(&going_down),
            );
            let serve = move || {
                let mut submit = |job: Job| -> Result<(), String> {
                    // Relaxed: a standalone flag, read by the link's thread between jobs.
                    if going_down.load(Ordering::Relaxed) {
                        return Err("the link is going down".into());
                    }
                    let down = job.request == Request::Down;
                    match tx.try_send(job) {
                        Ok(()) => {}
                        Err(mpsc::TrySendError::Full(_)) => {
                            return Err(format!(
                                "the link owner is busy: {JOB_QUEUE} jobs are waiting for the link; try again"
                            ));
                        }
                        Err(mpsc::TrySendError::Disconnected(_)) => {
                            return Err("the link is going down".into());
                        }
                    }
                    if down {
                        going_down.store(true, Ordering::Relaxed);
                    }
                    Ok(())
                };
                let _ = control::serve_connection(&mut s, &status, &mut submit);
                live.fetch_sub(1, Ordering::Relaxed);
            };
            if std::thread::Builder::new()
                .name("intercore-client".into())
                .stack_size(256 << 10)
                .spawn(serve)
                .is_err()
            {
                // The closure (and its connection) is dropped: the client sees the close.
                clients.fetch_sub(1, Ordering::Relaxed);
                log_line("could not start a thread for a client");
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("intercore-accept".into())
        .spawn(accept)
    {
        log_line(&format!("could not start the accepting thread: {e}"));
    }
    (rx, down_asked)
}

/// One line to the owner's log (its stderr).
fn log_line(what: &str) {
    diagln!("intercore link owner: {what}");
}

/// `intercore down`.
///
/// A file with several cores and no `--core`: every core in turn.
pub fn down(a: &BoardArg, json_out: bool) -> Result<u8, CliError> {
    if let Some(names) = all_cores(&a.board, a.core.as_deref())? {
        return each_core("down", &names, json_out, |n| {
            down(
                &BoardArg {
                    board: a.board.clone(),
                    core: Some(n.to_string()),
                },
                json_out,
            )
        });
    }
    let (b, core) = load(&a.board, a.core.as_deref())?;
    if !owned(&b) {
        let env = open_env();
        let Some(rp) = b
            .remoteproc_handle(&env.rproc)
            .map_err(|e| CliError::at(&a.board, e.to_string()))?
        else {
            return Ok(EXIT_OK);
        };
        let spec = b
            .remoteproc
            .as_ref()
            .expect("a handle means a [remoteproc]");
        let st = rp.state().map_err(|e| CliError::failed(e.to_string()))?;
        let r = match (spec.boot, st.is_up()) {
            (_, false) => Ok(st),
            (intercore_board::Boot::Load, true) => rp.stop(spec.control, Duration::from_secs(10)),
            (intercore_board::Boot::Attach, true) => {
                rp.detach(spec.control, Duration::from_secs(10))
            }
        };
        let st = r.map_err(|e| CliError::at(&a.board, e.to_string()))?;
        if json_out {
            outln!(
                "{}",
                json!({ "board": b.name, "down": true, "state": st.as_str() })
            )?;
        } else {
            outln!("{}: down (remote processor {})", b.name, st)?;
        }
        return Ok(EXIT_OK);
    }
    let p = place(&a.board, core.as_deref())?;
    match connect(&p)? {
        Owner::Up(s) => {
            // The answer's "core" says how the core ended; the board's name says which.
            let v = request(s, &Request::Down, "down", json_out)?;
            if json_out {
                outln!("{v}")?;
            } else {
                outln!(
                    "{}: down ({})",
                    b.name,
                    v.get("core")
                        .and_then(Value::as_str)
                        .or_else(|| v.get("error").and_then(Value::as_str))
                        .unwrap_or("")
                )?;
            }
            Ok(if v.get("error").is_some() {
                EXIT_FAILED
            } else {
                EXIT_OK
            })
        }
        Owner::None => Err(no_owner(&a.board, core.as_deref())),
        Owner::Dead(why) => {
            // Nothing to stop; the stale socket goes (only a socket nobody listens on).
            let _ = intercore_linux::file::clear_stale_socket(&p.sock, "");
            let _ = std::fs::remove_file(&p.pid);
            Err(CliError::at(
                &a.board,
                format!(
                    "board {}: {why}; removed the stale socket",
                    a.board.display()
                ),
            ))
        }
    }
}

fn job_error(v: &Value) -> Option<String> {
    v.get("error").and_then(Value::as_str).map(str::to_string)
}

fn us(ns: &Value) -> String {
    format!("{:.1} µs", ns.as_u64().unwrap_or(0) as f64 / 1e3)
}

/// `intercore ping`.
///
/// A file with several cores and no `--core`: every core in turn, one result each.
pub fn ping(a: &PingArgs, json_out: bool) -> Result<u8, CliError> {
    if let Some(names) = all_cores(&a.board, a.core.as_deref())? {
        return each_core("ping", &names, json_out, |n| {
            ping(
                &PingArgs {
                    core: Some(n.to_string()),
                    ..a.clone()
                },
                json_out,
            )
        });
    }
    let (b, v) = run_job(
        &a.board,
        a.core.as_deref(),
        Request::Ping { count: a.count },
        "ping",
        json_out,
    )?;
    if let Some(e) = job_error(&v) {
        return Err(CliError::at(&a.board, format!("{}: {e}", b.name)));
    }
    let verified = v["verified"].as_u64().unwrap_or(0);
    let ok = verified == a.count && v["errors"].as_u64() == Some(0);
    if json_out {
        outln!("{v}")?;
    } else {
        outln!(
            "{} ({}): {verified}/{} round trips verified, p50 {}, p99 {}, min {}, max {}",
            b.name,
            v["transport"].as_str().unwrap_or("?"),
            a.count,
            us(&v["p50_ns"]),
            us(&v["p99_ns"]),
            us(&v["min_ns"]),
            us(&v["max_ns"])
        )?;
    }
    if let Some(e) = v["first_error"].as_str() {
        diagln!("first problem: {e}");
    }
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}

/// `intercore echo`.
///
/// A file with several cores and no `--core`: every core in turn, one result each.
pub fn echo(a: &EchoArgs, json_out: bool) -> Result<u8, CliError> {
    if let Some(names) = all_cores(&a.board, a.core.as_deref())? {
        return each_core("echo", &names, json_out, |n| {
            echo(
                &EchoArgs {
                    core: Some(n.to_string()),
                    ..a.clone()
                },
                json_out,
            )
        });
    }
    let (b, v) = run_job(
        &a.board,
        a.core.as_deref(),
        Request::Echo {
            messages: a.messages,
        },
        "echo",
        json_out,
    )?;
    if let Some(e) = job_error(&v) {
        return Err(CliError::at(&a.board, format!("{}: {e}", b.name)));
    }
    let (n, verified) = (
        v["messages"].as_u64().unwrap_or(0),
        v["verified"].as_u64().unwrap_or(0),
    );
    if json_out {
        outln!("{v}")?;
    } else {
        outln!(
            "{} ({}): {verified}/{n} messages of 1..{} bytes echoed and verified ({} bytes), p50 {}",
            b.name,
            v["transport"].as_str().unwrap_or("?"),
            v["max_payload"],
            v["bytes"],
            us(&v["p50_ns"])
        )?;
    }
    if let Some(e) = v["first_error"].as_str() {
        diagln!("first problem: {e}");
    }
    Ok(if verified == n && n > 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// The host-only baselines of `bench` (spin floor, Unix socket, pipe, iceoryx2): their
/// peer is a process on this host, not the board's core.
const BASELINES: [&str; 3] = ["spin-floor", "unix-socket", "pipe"];

/// `intercore bench --board`.
pub fn bench(a: &BenchArgs, board: &Path, json_out: bool) -> Result<u8, CliError> {
    let suites: Vec<Suite> = if a.suites.is_empty() {
        vec![Suite::Rtt, Suite::Throughput, Suite::Bulk]
    } else {
        a.suites.clone()
    };
    if let Some(s) = suites
        .iter()
        .find(|s| matches!(s, Suite::Soak | Suite::RttInline))
    {
        return Err(CliError {
            option: Some(s.name().into()),
            ..CliError::failed(
                "bench --board runs rtt, throughput and bulk; the soak and rtt-inline run only on this host without --board",
            )
        });
    }
    let mut failed = false;
    let mut rows = Vec::new();
    for s in suites {
        let req = match s {
            Suite::Rtt => Request::Bench {
                suite: BenchSuite::Rtt,
                n: a.samples,
            },
            Suite::Throughput => Request::Bench {
                suite: BenchSuite::Throughput,
                n: a.samples,
            },
            _ => Request::Bench {
                suite: BenchSuite::Bulk,
                n: 16,
            },
        };
        let (b, v) = run_job(
            board,
            a.core.as_deref(),
            req,
            &format!("bench {} on {}", s.name(), board.display()),
            json_out,
        )?;
        let bname = b.name.clone();
        let transport = v["transport"].as_str().unwrap_or("?").to_string();
        if let Some(e) = job_error(&v) {
            failed = true;
            rows.push(
                json!({ "bench": s.name(), "board": bname, "transport": transport, "error": e }),
            );
            continue;
        }
        for mut r in v["rows"].as_array().cloned().unwrap_or_default() {
            if r.get("errors").and_then(Value::as_u64).unwrap_or(0) > 0
                || r.get("corrupted").and_then(Value::as_u64).unwrap_or(0) > 0
            {
                failed = true;
            }
            r["board"] = json!(bname);
            r["transport"] = json!(transport);
            rows.push(r);
        }
        if s == Suite::Rtt {
            for base in BASELINES {
                rows.push(json!({
                    "bench": "rtt", "board": bname, "transport": base, "na":
                    "a host-only baseline whose peer is a process on this host, not the board's core; `intercore bench rtt` without --board measures it",
                }));
            }
        }
    }
    print_bench_rows(&rows, json_out)?;
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}

/// One `bench --board` row as text: the same columns for every row (suite, board,
/// transport, size), then what the row measured.
pub fn bench_row_text(r: &Value) -> String {
    let size = match r.get("size").and_then(Value::as_u64) {
        Some(s) if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        Some(s) if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        Some(s) => format!("{s} B"),
        None => "-".into(),
    };
    let head = format!(
        "{:<10} {:<28} {:<14} {:>6}",
        r["bench"].as_str().unwrap_or(""),
        r["board"].as_str().unwrap_or(""),
        r["transport"].as_str().unwrap_or(""),
        size
    );
    if let Some(na) = r.get("na").and_then(Value::as_str) {
        return format!("{head}  n/a: {na}");
    }
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        return format!("{head}  failed: {e}");
    }
    match r["bench"].as_str() {
        Some("rtt") => format!(
            "{head}  p50 {:>9}  p99 {:>9}  mean {:>9}  {} samples",
            us(&r["p50_ns"]),
            us(&r["p99_ns"]),
            us(&r["mean_ns"]),
            r["samples"]
        ),
        Some("throughput") => format!(
            "{head}  {:>10.0} msg/s  {:>8.1} MB/s one way, bursts of {}",
            r["msgs_per_s"].as_f64().unwrap_or(0.0),
            r["mb_per_s"].as_f64().unwrap_or(0.0),
            r["burst"]
        ),
        _ => format!(
            "{head}  {} of data in {} buffers of 1 MiB, {:.3} GB/s, {} corrupted; CRC32C by the core, each checked",
            mib_text(r["bytes"].as_u64()),
            r["buffers"],
            r["gbps"].as_f64().unwrap_or(0.0),
            r["corrupted"]
        ),
    }
}

/// `16 MiB`, or bytes when not a whole number of MiB (`? MiB` when unknown).
fn mib_text(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        Some(b) => format!("{:.2} MiB", b as f64 / f64::from(1 << 20)),
        None => "? MiB".into(),
    }
}

/// Prints the rows of `bench --board`, each as it is given.
fn print_bench_rows(rows: &[Value], json_out: bool) -> Result<(), crate::out::Closed> {
    for r in rows {
        if json_out {
            crate::out::json(r)?;
        } else {
            outln!("{}", bench_row_text(r))?;
        }
    }
    Ok(())
}
