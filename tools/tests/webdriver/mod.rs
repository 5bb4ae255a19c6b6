//! A small WebDriver client for the browser tests: Debian's `chromedriver`
//! driving headless `chromium`, spoken to as JSON over HTTP/1.1 on
//! 127.0.0.1 (std's `TcpStream` and `serde_json`, no TLS, nothing
//! downloaded).
//!
//! [`Browser::start`] returns `None` when either program is missing, so
//! that a test can skip; dropping the [`Browser`] ends the session and
//! kills chromedriver's process group (it and the browser it started).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys as WebDriver writes them.
pub const RIGHT: &str = "\u{E014}";
pub const LEFT: &str = "\u{E012}";
pub const DOWN: &str = "\u{E015}";

/// A running chromedriver with one session of headless Chromium.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// Starts chromedriver on a port it picks (`--port=0`, read from its
    /// first lines) and a session of headless Chromium with a fresh profile.
    /// `Ok(None)` when chromium or chromedriver is not installed.
    pub fn start() -> Result<Option<Browser>, String> {
        let (Some(chromium), Some(chromedriver)) = (
            find_program(&["chromium", "chromium-browser"]),
            find_program(&["chromedriver"]),
        ) else {
            return Ok(None);
        };
        // A process group of its own, so that the browser it starts can be
        // killed with it even when no session was made.
        let mut driver = Command::new(&chromedriver)
            .process_group(0)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", chromedriver.display()))?;
        let stdout = driver.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = driver.kill();
                return Err("chromedriver ended without saying its port".to_string());
            };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest
                    .trim_end_matches('.')
                    .trim()
                    .parse::<u16>()
                    .map_err(|e| format!("chromedriver's port in {line:?}: {e}"))?;
            }
        };
        // Keep reading its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let profile =
            std::env::temp_dir().join(format!("brk-pools-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|e| e.to_string())?;
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        let args = [
            "--headless=new".to_string(),
            // As root Chromium refuses to start sandboxed.
            "--no-sandbox".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-gpu".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--window-size=1400,900".to_string(),
            format!("--user-data-dir={}", browser.profile.display()),
        ];
        let created = browser.request(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}})),
        )?;
        browser.session = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {created}"))?
            .to_string();
        Ok(Some(browser))
    }

    /// One request; the response's `value`, or its error as text.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| format!("cannot reach chromedriver: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        // Read the head, then as many bytes as it announces (chromedriver
        // may keep the connection open).
        let mut response = Vec::new();
        let mut buffer = [0u8; 64 * 1024];
        let (head, body_start, length) = loop {
            let read = stream
                .read(&mut buffer)
                .map_err(|e| format!("{method} {path}: {e}"))?;
            if read == 0 {
                return Err(format!("{method} {path}: the connection closed early"));
            }
            response.extend_from_slice(&buffer[..read]);
            if let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|n| n.trim().parse::<usize>().ok());
                break (head, split + 4, length);
            }
        };
        let chunked = head.contains("transfer-encoding: chunked");
        loop {
            let have = response.len() - body_start;
            let complete = match length {
                Some(length) => have >= length,
                None if chunked => response.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if complete {
                break;
            }
            let read = stream
                .read(&mut buffer)
                .map_err(|e| format!("{method} {path}: {e}"))?;
            if read == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..read]);
        }
        let payload = &response[body_start..];
        let payload = if chunked {
            dechunk(payload)
        } else {
            payload.to_vec()
        };
        let payload = String::from_utf8_lossy(&payload);
        let value: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("{method} {path}: {e} in {payload:?}"))?;
        let value = value["value"].clone();
        if value.get("error").is_some() {
            return Err(format!(
                "{method} {path}: {} {}",
                value["error"], value["message"]
            ));
        }
        Ok(value)
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.request(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        )
        .map(drop)
    }

    /// Reloads the page.
    pub fn refresh(&self) -> Result<(), String> {
        self.request("POST", &self.session_path("/refresh"), Some(json!({})))
            .map(drop)
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub fn execute(&self, script: &str) -> Result<Value, String> {
        self.request(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `condition` (a JavaScript expression) until it is true, for at
    /// most `limit`; the time it took.
    pub fn wait_for(&self, condition: &str, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if self.execute(&format!("return !!({condition});"))? == Value::Bool(true) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(format!("not true after {limit:?}: {condition}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The element `css` selects (its WebDriver reference).
    pub fn find(&self, css: &str) -> Result<String, String> {
        let found = self.request(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        found[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element {css}: {found}"))
    }

    /// Types `keys` into the element `element` ([`Browser::find`]),
    /// focusing it.
    pub fn send_keys(&self, element: &str, keys: &str) -> Result<(), String> {
        self.request(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({"text": keys})),
        )
        .map(drop)
    }

    /// Writes a screenshot of the window to `path` (PNG).
    pub fn screenshot(&self, path: &Path) -> Result<(), String> {
        let encoded = self.request("GET", &self.session_path("/screenshot"), None)?;
        let bytes = base64_decode(encoded.as_str().unwrap_or_default())?;
        std::fs::write(path, bytes).map_err(|e| e.to_string())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &self.session_path(""), None);
        }
        if let Ok(group) = libc::pid_t::try_from(self.driver.id()) {
            // SAFETY: a plain system call; the group is chromedriver's own
            // (process_group(0) at spawn), which it has not reaped yet.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The body of a chunked HTTP response.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let after = &rest[end + 2..];
        let Some(size) = size.filter(|&n| n > 0 && n <= after.len()) else {
            break;
        };
        out.extend_from_slice(&after[..size]);
        rest = after[size..]
            .strip_prefix(b"\r\n")
            .unwrap_or(&after[size..]);
    }
    out
}

/// Standard base64, as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {:?}", c as char)),
        } as u32)
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut word = 0u32;
        for (at, &c) in chunk.iter().enumerate() {
            word |= value(c)? << (18 - 6 * at);
        }
        let bytes = word.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}
