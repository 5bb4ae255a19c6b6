//! Running a driver under `ptrace`: breakpoints (`int3`) at the three C
//! functions and at every recorded range's start; inside a range, one
//! `PTRACE_SINGLESTEP` per instruction with the registers after it; outside,
//! `PTRACE_CONT`. The dynamic loader and the driver are never stepped, except
//! for one unrecorded step over an entry point's breakpoint (the first
//! instruction of the C function an operation enters) so that it can go back
//! in.
//!
//! While the tracee is stopped at a breakpoint all breakpoints are taken out
//! (so that a loop jumping back to its own start is stepped, not trapped),
//! and put back before it continues.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::StepError;
use super::decode::CONTRACT;
use super::pairing::{Entry, Map};

/// The contract registers, `%rflags` and `%rip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regs {
    /// `%r10 %rdx %rsi %rcx %rdi %r8 %rax`, in [`CONTRACT`] order.
    pub values: [u64; CONTRACT.len()],
    /// `%rflags`.
    pub rflags: u64,
    /// `%rip` (run-time address).
    pub rip: u64,
}

/// A heap block as the walk picture needs it: address and the three header
/// words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderWords {
    /// The header's run-time address.
    pub address: u64,
    /// `in_use`, `size`, `pool`.
    pub words: [u64; 3],
}

/// The heap's headers from `%rsi` to `%rcx` when an allocate walk or a pool
/// walk started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// `%rsi`: `memory_start`.
    pub start: u64,
    /// `%rcx`: `memory_end`.
    pub end: u64,
    /// The blocks read, in order.
    pub blocks: Vec<HeaderWords>,
    /// Whether more blocks followed than were read.
    pub truncated: bool,
}

/// What happened, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// One of the three C functions was entered: an operation begins.
    /// `args` are `%rdi` and `%rsi`.
    Operation {
        /// Which function.
        entry: Entry,
        /// `%rdi`, `%rsi`.
        args: [u64; 2],
    },
    /// An instruction of a recorded range ran.
    Step {
        /// Its link-time address.
        address: u64,
        /// The registers after it.
        after: Regs,
    },
    /// The heap's headers, read before the first instruction of an allocate
    /// walk or a pool walk.
    Headers(Headers),
    /// The tracee got a signal (inside a walk or not).
    Signal(i32),
}

/// One run of a driver.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The events, in order.
    pub events: Vec<Event>,
    /// The driver's `heap0`: the break before the first operation.
    pub heap0: u64,
    /// Load bias: run-time minus link-time addresses (0 unless PIE).
    pub bias: u64,
    /// Instructions single-stepped.
    pub steps: u64,
    /// The driver's standard output (its trace).
    pub stdout: String,
    /// How the driver ended: `exit 0`, `signal 11`.
    pub status: String,
}

/// Most blocks read for one walk picture.
pub const HEADER_LIMIT: usize = 4096;

/// Runs `driver` on `script` under ptrace.
///
/// # Errors
/// [`StepError::Trace`] for a failing ptrace call or spawn;
/// [`StepError::MaxSteps`] when more than `max_steps` instructions would be
/// stepped (the tracee is killed).
pub fn record(
    driver: &Path,
    side: &'static str,
    map: &Map,
    script: &str,
    max_steps: u64,
    read_headers: bool,
) -> Result<Recording, StepError> {
    let mut command = Command::new(driver);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // the ptrace system call, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| StepError::Trace {
        side,
        message: format!("cannot run {}: {e}", driver.display()),
    })?;
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let input = script.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut tracer = Tracer {
        pid,
        side,
        map,
        bias: 0,
        saved: HashMap::new(),
        events: Vec::new(),
        steps: 0,
        max_steps,
        read_headers,
        heap0: None,
    };
    let result = tracer.run();
    if result.is_err() {
        // SAFETY: plain system calls on our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    let status = result?;
    Ok(Recording {
        events: tracer.events,
        heap0: tracer.heap0.unwrap_or(0),
        bias: tracer.bias,
        steps: tracer.steps,
        stdout,
        status,
    })
}

/// How a `waitpid` ended.
enum Stop {
    /// Stopped by a signal.
    Signal(i32),
    /// Exited or was killed: the status text.
    Ended(String),
}

struct Tracer<'a> {
    pid: libc::pid_t,
    side: &'static str,
    map: &'a Map,
    bias: u64,
    /// Breakpoint address (run-time) → the byte the `int3` replaced.
    saved: HashMap<u64, u8>,
    events: Vec<Event>,
    steps: u64,
    max_steps: u64,
    read_headers: bool,
    heap0: Option<u64>,
}

impl Tracer<'_> {
    fn fail(&self, what: &str) -> StepError {
        StepError::Trace {
            side: self.side,
            message: format!("{what}: {}", std::io::Error::last_os_error()),
        }
    }

    fn wait(&self) -> Result<Stop, StepError> {
        let mut status = 0;
        // SAFETY: waitpid on our own child, into a local.
        if unsafe { libc::waitpid(self.pid, &mut status, 0) } == -1 {
            return Err(self.fail("waitpid"));
        }
        Ok(if libc::WIFSTOPPED(status) {
            Stop::Signal(libc::WSTOPSIG(status))
        } else if libc::WIFEXITED(status) {
            Stop::Ended(format!("exit {}", libc::WEXITSTATUS(status)))
        } else {
            Stop::Ended(format!("signal {}", libc::WTERMSIG(status)))
        })
    }

    fn request(&self, request: libc::c_uint, address: u64, data: u64) -> Result<i64, StepError> {
        // SAFETY: ptrace on our stopped tracee; PEEK results come back as the
        // return value (errno tells an error from a word of all ones).
        unsafe {
            *libc::__errno_location() = 0;
            let value = libc::ptrace(request, self.pid, address, data);
            if value == -1 && *libc::__errno_location() != 0 {
                return Err(self.fail("ptrace"));
            }
            Ok(value)
        }
    }

    fn peek(&self, address: u64) -> Result<u64, StepError> {
        self.request(libc::PTRACE_PEEKDATA, address, 0)
            .map(|v| v as u64)
    }

    fn poke(&self, address: u64, word: u64) -> Result<(), StepError> {
        self.request(libc::PTRACE_POKEDATA, address, word).map(drop)
    }

    fn regs(&self) -> Result<libc::user_regs_struct, StepError> {
        // SAFETY: user_regs_struct is plain data; PTRACE_GETREGS fills it.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: as above, the pointer is to a local of the right type.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, self.pid, 0, &mut regs) } == -1 {
            return Err(self.fail("PTRACE_GETREGS"));
        }
        Ok(regs)
    }

    fn set_rip(&self, rip: u64) -> Result<(), StepError> {
        let mut regs = self.regs()?;
        regs.rip = rip;
        // SAFETY: as in regs().
        if unsafe { libc::ptrace(libc::PTRACE_SETREGS, self.pid, 0, &regs) } == -1 {
            return Err(self.fail("PTRACE_SETREGS"));
        }
        Ok(())
    }

    fn resume(&self, request: libc::c_uint, signal: i32) -> Result<(), StepError> {
        self.request(request, 0, signal as u64).map(drop)
    }

    fn breakpoints(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .map
            .walk_starts
            .iter()
            .copied()
            .chain(self.map.entries.iter().map(|&(a, _)| a))
            .map(|a| a + self.bias)
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn insert_breakpoints(&mut self) -> Result<(), StepError> {
        for address in self.breakpoints() {
            let word = self.peek(address)?;
            self.saved.insert(address, word as u8);
            self.poke(address, (word & !0xff) | 0xcc)?;
        }
        Ok(())
    }

    fn remove_breakpoints(&mut self) -> Result<(), StepError> {
        for (address, byte) in std::mem::take(&mut self.saved) {
            let word = self.peek(address)?;
            self.poke(address, (word & !0xff) | u64::from(byte))?;
        }
        Ok(())
    }

    /// The load bias, from the run-time entry point in `/proc/PID/auxv`.
    fn load_bias(&self, link_entry: u64) -> Result<u64, StepError> {
        let auxv =
            std::fs::read(format!("/proc/{}/auxv", self.pid)).map_err(|e| StepError::Trace {
                side: self.side,
                message: format!("cannot read auxv: {e}"),
            })?;
        let words: Vec<u64> = auxv
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let entry = words
            .chunks_exact(2)
            .find(|pair| pair[0] == libc::AT_ENTRY)
            .map(|pair| pair[1])
            .ok_or_else(|| StepError::Trace {
                side: self.side,
                message: "no AT_ENTRY in auxv".to_string(),
            })?;
        Ok(entry.wrapping_sub(link_entry))
    }

    fn run(&mut self) -> Result<String, StepError> {
        match self.wait()? {
            Stop::Signal(libc::SIGTRAP) => {}
            Stop::Signal(other) => {
                return Err(StepError::Trace {
                    side: self.side,
                    message: format!("stopped by signal {other} before exec"),
                });
            }
            Stop::Ended(status) => {
                return Err(StepError::Trace {
                    side: self.side,
                    message: format!("the driver ended before it ran ({status})"),
                });
            }
        }
        self.request(libc::PTRACE_SETOPTIONS, 0, libc::PTRACE_O_EXITKILL as u64)?;
        self.bias = self.load_bias(self.map.link_entry)?;
        self.insert_breakpoints()?;
        let mut signal = 0;
        loop {
            self.resume(libc::PTRACE_CONT, signal)?;
            signal = 0;
            match self.wait()? {
                Stop::Ended(status) => return Ok(status),
                Stop::Signal(libc::SIGTRAP) => {
                    let rip = self.regs()?.rip;
                    let at = rip.wrapping_sub(1);
                    if !self.saved.contains_key(&at) {
                        signal = libc::SIGTRAP;
                        continue;
                    }
                    self.remove_breakpoints()?;
                    self.set_rip(at)?;
                    match self.at_breakpoint(at)? {
                        Some(Stop::Ended(status)) => return Ok(status),
                        Some(Stop::Signal(s)) => signal = s,
                        None => {}
                    }
                    self.insert_breakpoints()?;
                }
                Stop::Signal(other) => {
                    self.events.push(Event::Signal(other));
                    signal = other;
                }
            }
        }
    }

    /// At breakpoint `at` (taken out): note an operation, step a walk.
    /// Returns a stop that ends stepping early (a signal to deliver, or the
    /// end of the tracee).
    fn at_breakpoint(&mut self, at: u64) -> Result<Option<Stop>, StepError> {
        let link = at - self.bias;
        if let Some(&(_, entry)) = self.map.entries.iter().find(|&&(a, _)| a == link) {
            let regs = self.regs()?;
            if self.heap0.is_none() {
                self.heap0 = Some(self.peek(self.map.heap0 + self.bias)?);
            }
            self.events.push(Event::Operation {
                entry,
                args: [regs.rdi, regs.rsi],
            });
        }
        let mut moved = false;
        loop {
            let regs = self.regs()?;
            let link = regs.rip.wrapping_sub(self.bias);
            if !self.map.sites.contains_key(&link) {
                break;
            }
            if self.steps >= self.max_steps {
                return Err(StepError::MaxSteps {
                    side: self.side,
                    limit: self.max_steps,
                });
            }
            if self.read_headers
                && self.map.walk_loop_starts.contains(&link)
                && !self.has_headers_for_this_operation()
            {
                let headers = self.headers(regs.rsi, regs.rcx)?;
                self.events.push(Event::Headers(headers));
            }
            self.resume(libc::PTRACE_SINGLESTEP, 0)?;
            self.steps += 1;
            moved = true;
            match self.wait()? {
                Stop::Signal(libc::SIGTRAP) => {
                    let after = self.regs()?;
                    self.events.push(Event::Step {
                        address: link,
                        after: Regs {
                            values: [
                                after.r10, after.rdx, after.rsi, after.rcx, after.rdi, after.r8,
                                after.rax,
                            ],
                            rflags: after.eflags,
                            rip: after.rip,
                        },
                    });
                }
                Stop::Signal(other) => {
                    self.events.push(Event::Signal(other));
                    return Ok(Some(Stop::Signal(other)));
                }
                ended @ Stop::Ended(_) => return Ok(Some(ended)),
            }
        }
        if !moved {
            // An entry point outside the walks: step over it once (not
            // recorded) so that its breakpoint can go back in.
            self.resume(libc::PTRACE_SINGLESTEP, 0)?;
            match self.wait()? {
                Stop::Signal(libc::SIGTRAP) => {}
                other => return Ok(Some(other)),
            }
        }
        Ok(None)
    }

    fn has_headers_for_this_operation(&self) -> bool {
        self.events
            .iter()
            .rev()
            .take_while(|e| !matches!(e, Event::Operation { .. }))
            .any(|e| matches!(e, Event::Headers(_)))
    }

    /// Reads headers from `start` to `end` (at most [`HEADER_LIMIT`]).
    fn headers(&self, start: u64, end: u64) -> Result<Headers, StepError> {
        let mut blocks = Vec::new();
        let mut at = start;
        while at < end && blocks.len() < HEADER_LIMIT {
            let words = [self.peek(at)?, self.peek(at + 8)?, self.peek(at + 16)?];
            blocks.push(HeaderWords { address: at, words });
            if words[1] == 0 || words[1] > end - at {
                break;
            }
            at += words[1];
        }
        Ok(Headers {
            start,
            end,
            truncated: at < end && blocks.len() == HEADER_LIMIT,
            blocks,
        })
    }
}
