//! Drives the private Postfix and Sendmail instances of `tests/mta/` from Rust tests.
//!
//! The tools come from `tests/mta/install-deps.sh` (run by `tests/run`). The real-MTA tests
//! are `#[ignore]`d with the reason, so a plain `cargo test` reports them skipped; `tests/run`
//! runs them as root (`--include-ignored`), and there a missing tool fails them with a message
//! saying how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tokio::sync::{Mutex, MutexGuard};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One real-MTA test at a time: each starts daemons, and two cores are better spent on one.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    let have = |bin: &str| Path::new(bin).exists();
    assert!(
        have("/usr/sbin/postfix") && have("/usr/bin/swaks") && have("/usr/bin/miltertest"),
        "postfix, swaks and miltertest are needed: run tests/run as root (it installs them with \
         tests/mta/install-deps.sh)"
    );
    assert!(unsafe_is_root(), "the real-MTA tests start Postfix and must run as root (tests/run)");
    LOCK.get_or_init(|| Mutex::new(())).lock().await
}

fn unsafe_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

/// A fresh directory for one instance, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("im-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        // Postfix's daemons and the delivery user must get through it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Postfix {
    pub dir: TempDir,
    env: Vec<(String, String)>,
}

fn run(script: &str, args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(repo().join("tests/mta").join(script))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

impl Postfix {
    /// Starts an instance on a free port whose milter is `milter` (`inet:127.0.0.1:P`,
    /// `inet:[::1]:P`, `unix:/path`, or `none`). `extra` sets more `LAB_*` variables.
    pub fn start(milter: &str, extra: &[(&str, &str)]) -> Postfix {
        let dir = TempDir::new("postfix");
        let mut env = vec![
            ("LAB_DIR".to_string(), dir.0.join("lab").display().to_string()),
            ("LAB_PORT".to_string(), "auto".to_string()),
            ("LAB_STATE_FILE".to_string(), dir.0.join("current").display().to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let pf = Postfix { dir, env };
        let o = pf.run(&["start", milter]);
        assert!(o.status.success(), "postfix-lab start failed:\n{}", text(&o));
        pf
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run("postfix-lab.sh", args, &self.env)
    }

    /// The lab command for `args`, ready to be spawned (for work that must run alongside).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(repo().join("tests/mta/postfix-lab.sh"));
        c.args(args).envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// A variable of the instance's `env` output (LAB_PORT, LAB_TLS_CERT, MAIL_CONFIG, ...).
    pub fn env(&self, name: &str) -> String {
        let env = text(&self.run(&["env"]));
        env.lines()
            .find_map(|l| l.trim_start_matches("export ").strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches(['\'', '"']).to_string())
            .unwrap_or_else(|| panic!("no {name} in:\n{env}"))
    }

    /// The SMTP port the instance listens on.
    pub fn port(&self) -> u16 {
        self.env("LAB_PORT").parse().unwrap()
    }

    /// One SMTP transaction with swaks; returns its exit code and transcript.
    pub fn send(&self, args: &[&str]) -> (i32, String) {
        let o = self.run(&[&["send"], args].concat());
        (o.status.code().unwrap_or(-1), text(&o))
    }

    pub fn inbox(&self) -> String {
        text(&self.run(&["inbox"]))
    }

    pub fn inbox_count(&self) -> usize {
        text(&self.run(&["inbox", "-c"])).trim().parse().unwrap_or(0)
    }

    pub fn held_count(&self) -> usize {
        text(&self.run(&["held", "-c"])).trim().parse().unwrap_or(0)
    }

    pub fn log(&self) -> String {
        text(&self.run(&["log"]))
    }

    pub fn set_milter(&self, milter: &str) {
        let o = self.run(&["milter", milter]);
        assert!(o.status.success(), "{}", text(&o));
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.run(&["destroy"]);
    }
}

pub struct Sendmail {
    pub dir: TempDir,
    env: Vec<(String, String)>,
}

impl Sendmail {
    pub fn start(milter: &str) -> Sendmail {
        let dir = TempDir::new("sendmail");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env = vec![
            ("SM_DIR".to_string(), dir.0.join("sm").display().to_string()),
            ("SM_PORT".to_string(), port.to_string()),
            ("SM_NO_INSTALL".to_string(), "1".to_string()),
        ];
        let sm = Sendmail { dir, env };
        let o = sm.run(&["start", milter]);
        assert!(o.status.success(), "sendmail-lab start failed:\n{}", text(&o));
        sm
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run("sendmail-lab.sh", args, &self.env)
    }

    pub fn port(&self) -> u16 {
        self.env[1].1.parse().unwrap()
    }

    pub fn send(&self, args: &[&str]) -> (i32, String) {
        let o = self.run(&[&["send"], args].concat());
        (o.status.code().unwrap_or(-1), text(&o))
    }

    pub fn inbox(&self) -> String {
        text(&self.run(&["inbox"]))
    }

    pub fn held(&self) -> String {
        text(&self.run(&["held"]))
    }
}

impl Drop for Sendmail {
    fn drop(&mut self) {
        let _ = self.run(&["destroy"]);
    }
}

/// Runs a miltertest script against `socket` with `vars`; returns (passed, output).
pub fn miltertest(script: &str, socket: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new("miltertest");
    cmd.arg("-D").arg(format!("MILTER_SOCKET={socket}"));
    for (k, v) in vars {
        cmd.arg("-D").arg(format!("{k}={v}"));
    }
    cmd.arg("-s").arg(repo().join("tests/mta/miltertest").join(script));
    let o = cmd.output().expect("running miltertest");
    let out = text(&o);
    (o.status.success() && out.lines().any(|l| l.starts_with("PASS")), out)
}
