//! `brk-pools step`: the walks instruction by instruction, on both machines.
//!
//! The same C driver (`asm/trace.c`) runs an operation script twice, linked
//! once with run.s and once with `libbrk_pools.a`, each under `ptrace`
//! ([`tracer`]). Every executed instruction of the ported labels
//! (`allocate_loop`, `try_next_block`, `allocate_move_break` (on run.s's
//! side its break move too, which the port does in Rust), `deallocate`,
//! `deallocate_pool_loop`, `deallocate_from_pool`) is recorded with, after it, the registers of
//! run.s's contract that it reads or writes (`%r10 %rdx %rsi %rcx %rdi %r8
//! %rax`), the flags a conditional jump reads (CF, ZF) and, for a jump,
//! whether it was taken ([`decode`]). Which run.s instruction each executed
//! instruction is comes from [`pairing`], which also lists the few
//! instructions that only one side has ([`pairing::PAIRING`]): shown, never
//! compared.
//!
//! Pointers (`%rsi %rcx %r8`, `%rdi` in `deallocate`, `%rax`) are shown and
//! compared as offsets from the driver's heap start (`heap0`, the break
//! before the first operation); the pool and size (`%r10 %rdx`, `%rdi` in
//! the pool walk) stay numbers. The role decides, not the value. Registers an
//! instruction does not touch are not compared, nor are code addresses.
//!
//! [`picture`] draws one allocate's walk as SVG; [`html`] writes a page to
//! scrub through the whole run in a browser.

mod compare;
pub mod decode;
pub mod elf;
pub mod html;
mod listing;
pub mod pairing;
pub mod picture;
pub mod source;
pub mod tracer;

pub use compare::{Comparison, Difference};
pub use listing::{LISTING_WIDTH, Mark, Row, pairing_table};

use std::fmt;
use std::path::PathBuf;

use crate::offset::Offset;
use decode::{CONTRACT, Flag, Reg};
use pairing::{Entry, Map, Slot};
use tracer::{Event, Headers, Recording};

/// The default `--max-steps`: about two to three minutes of stepping.
pub const DEFAULT_MAX_STEPS: u64 = 1_000_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct StepOptions {
    /// The operation script (the text of a `.ops` file).
    pub script: String,
    /// `asm/trace.c` linked with run.s (its `memory_start`/`memory_end` made
    /// global), with its symbol table.
    pub original_driver: PathBuf,
    /// `asm/trace.c` linked with `libbrk_pools.a`.
    pub port_driver: PathBuf,
    /// Most instructions to single-step on each side.
    pub max_steps: u64,
    /// Read the heap's headers before every allocate walk and pool walk
    /// (for [`picture`] and [`html`]).
    pub read_headers: bool,
}

impl StepOptions {
    /// Options with the default step limit and no header reads.
    pub fn new(script: &str, original_driver: PathBuf, port_driver: PathBuf) -> StepOptions {
        StepOptions {
            script: script.to_string(),
            original_driver,
            port_driver,
            max_steps: DEFAULT_MAX_STEPS,
            read_headers: false,
        }
    }
}

/// Why `step` could not run to the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// A driver executable lacks what the tracer needs.
    Executable {
        /// The executable.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A system call of the tracer failed.
    Trace {
        /// `run.s` or `port`.
        side: &'static str,
        /// What failed.
        message: String,
    },
    /// More than `limit` instructions to step.
    MaxSteps {
        /// `run.s` or `port`.
        side: &'static str,
        /// The limit.
        limit: u64,
    },
    /// `brk-pools step --svg --op N`: operation N is not an allocate that
    /// walked.
    NoWalk {
        /// What was asked for.
        message: String,
    },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Executable { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
            StepError::Trace { side, message } => write!(f, "tracing the {side} driver: {message}"),
            StepError::MaxSteps { side, limit } => write!(
                f,
                "the {side} driver needs more than {limit} single steps; the script is too long \
                 for step (raise --max-steps, or shorten it)"
            ),
            StepError::NoWalk { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for StepError {}

/// A register value as compared: a pointer as an offset from the heap start,
/// or a number (a pool, a size, or a null pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A pointer: `address - heap0`.
    Offset(i128),
    /// A pool, a size, a null.
    Number(u64),
    /// A code address: `%rcx` after run.s's `syscall`, which the kernel
    /// sets to the return address (shown without its value, which depends
    /// on the linker).
    ReturnAddress,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Offset(offset) => Offset(offset).fmt(f),
            Value::Number(number) => write!(f, "{number}"),
            Value::ReturnAddress => f.write_str("(return address)"),
        }
    }
}

/// A register and its value after an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegValue {
    /// The register.
    pub reg: Reg,
    /// Its value after the instruction.
    pub value: Value,
    /// Whether the instruction wrote it (`:=` in listings) or only read it.
    pub written: bool,
}

impl fmt::Display for RegValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let assign = if self.written { ":=" } else { "=" };
        write!(f, "{}{assign}{}", self.reg.name(), self.value)
    }
}

/// One executed instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// Which run.s instruction it is (or which pairing row).
    pub slot: Slot,
    /// The run.s label it is shown under.
    pub label: &'static str,
    /// AT&T text without the jump target (compared).
    pub text: String,
    /// AT&T text with the jump target named (shown).
    pub shown: String,
    /// The contract registers it reads or writes, after it (compared).
    pub touched: Vec<RegValue>,
    /// All seven contract registers after it (shown at a difference).
    pub all: Vec<RegValue>,
    /// The flags a conditional jump reads, with their values (compared).
    pub flags: Vec<(Flag, bool)>,
    /// For a jump: taken or not (compared).
    pub taken: Option<bool>,
    /// The source line it was assembled from (shown).
    pub source: Option<source::SourceLine>,
}

impl Executed {
    /// Whether this instruction is compared (not a row of the pairing table).
    pub fn compared(&self) -> bool {
        matches!(self.slot, Slot::Label { .. })
    }

    /// Registers, flags and decision, as listed: `rsi:=+0x20 rcx=+0x80`,
    /// `CF=0 ZF=1 taken`.
    pub fn effects(&self) -> String {
        let mut parts: Vec<String> = self.touched.iter().map(ToString::to_string).collect();
        parts.extend(
            self.flags
                .iter()
                .map(|(flag, set)| format!("{}={}", flag.name(), u8::from(*set))),
        );
        match self.taken {
            Some(true) => parts.push("taken".to_string()),
            Some(false) => parts.push("not taken".to_string()),
            None => {}
        }
        parts.join(" ")
    }

    fn all_registers(&self) -> String {
        let all: Vec<String> = self
            .all
            .iter()
            .map(|r| format!("{}={}", r.reg.name(), r.value))
            .collect();
        all.join(" ")
    }
}

/// One operation of the script, as both sides ran it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// 0-based, as trace.c numbers them.
    pub number: usize,
    /// The call, from the original's registers: `allocate(1, 400)`.
    pub call: String,
    /// The script line it came from: `line 7: a 1 400`.
    pub line: Option<String>,
    /// run.s's instructions.
    pub original: Vec<Executed>,
    /// The port's instructions.
    pub port: Vec<Executed>,
    /// The original's heap before its allocate walk or pool walk (with
    /// [`StepOptions::read_headers`]).
    pub headers: Option<Headers>,
    /// The original's heap start, to turn header addresses into offsets.
    pub heap0: u64,
}

/// One thing of each side: run.s's and the port's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sides<T> {
    /// run.s's.
    pub original: T,
    /// The port's.
    pub port: T,
}

impl<T> Sides<T> {
    /// run.s's and the port's.
    pub fn new(original: T, port: T) -> Sides<T> {
        Sides { original, port }
    }
}

/// What `step` saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    /// Each operation both sides ran (as many as the side with more).
    pub operations: Vec<Operation>,
    /// Operations run by run.s's and by the port's driver.
    pub operation_counts: Sides<usize>,
    /// How each driver ended (`exit 0`, `signal 11`).
    pub statuses: Sides<String>,
    /// Signals each tracee received.
    pub signals: Sides<Vec<i32>>,
    /// Instructions single-stepped on each side.
    pub steps: Sides<u64>,
    /// Notes on how the port's blocks were matched.
    pub notes: Vec<String>,
}

/// The two drivers, read and matched once (finding the port's blocks
/// decodes its whole `.text`), for running many scripts.
#[derive(Clone, Debug)]
pub struct Drivers {
    original_driver: PathBuf,
    port_driver: PathBuf,
    original_map: Map,
    port_map: Map,
}

impl Drivers {
    /// Reads both executables and finds the recorded instructions in each.
    ///
    /// # Errors
    /// [`StepError::Executable`] if a symbol, a label or a port block is
    /// missing.
    pub fn load(original_driver: PathBuf, port_driver: PathBuf) -> Result<Drivers, StepError> {
        let original_exe = elf::Executable::read(&original_driver)?;
        let port_exe = elf::Executable::read(&port_driver)?;
        let original_map = pairing::original_map(&original_exe, &original_driver)?;
        let port_map = pairing::port_map(&port_exe, &port_driver, &original_exe, &original_driver)?;
        Ok(Drivers {
            original_driver,
            port_driver,
            original_map,
            port_map,
        })
    }

    /// Notes on how the port's blocks were matched (a changed jump
    /// condition).
    pub fn notes(&self) -> &[String] {
        &self.port_map.notes
    }

    /// Runs `script` through both drivers under ptrace.
    ///
    /// # Errors
    /// [`StepError::Trace`] or [`StepError::MaxSteps`].
    pub fn run(
        &self,
        script: &str,
        max_steps: u64,
        read_headers: bool,
    ) -> Result<StepOutcome, StepError> {
        let original = tracer::record(
            &self.original_driver,
            "run.s",
            &self.original_map,
            script,
            max_steps,
            read_headers,
        )?;
        let port = tracer::record(
            &self.port_driver,
            "port",
            &self.port_map,
            script,
            max_steps,
            false,
        )?;
        let original_ops = operations(&original, &self.original_map);
        let port_ops = operations(&port, &self.port_map);
        let counts = Sides::new(original_ops.len(), port_ops.len());
        let mut operations = Vec::new();
        let mut original_ops = original_ops.into_iter();
        let mut port_ops = port_ops.into_iter();
        let heap0 = original.heap0;
        // trace.c runs the lines that parse; so does script::parse.
        let mut lines = crate::script::parse(script)
            .into_iter()
            .filter_map(Result::ok)
            .map(|line| format!("line {}: {}", line.line, op_text(line.op)));
        for number in 0..counts.original.max(counts.port) {
            let Recorded {
                call,
                executed: mut original,
                headers,
            } = original_ops.next().unwrap_or_default();
            let Recorded {
                call: port_call,
                executed: port,
                ..
            } = port_ops.next().unwrap_or_default();
            if port.is_empty() && is_empty_heap_pool_walk(&original) {
                for executed in &mut original {
                    executed.slot = Slot::Unpaired(pairing::ROW_EMPTY_HEAP);
                }
            }
            operations.push(Operation {
                number,
                call: if call.is_empty() { port_call } else { call },
                line: lines.next(),
                original,
                port,
                headers,
                heap0,
            });
        }
        let signals = |r: &Recording| {
            r.events
                .iter()
                .filter_map(|e| match e {
                    Event::Signal(s) => Some(*s),
                    _ => None,
                })
                .collect()
        };
        Ok(StepOutcome {
            operations,
            operation_counts: counts,
            statuses: Sides::new(original.status.clone(), port.status.clone()),
            signals: Sides::new(signals(&original), signals(&port)),
            steps: Sides::new(original.steps, port.steps),
            notes: self.port_map.notes.clone(),
        })
    }
}

/// An operation as the script writes it.
fn op_text(op: crate::script::Op) -> String {
    use crate::script::Op;
    match op {
        Op::Allocate { pool, size } => format!("a {pool} {size}"),
        Op::Deallocate { handle } => format!("d {handle}"),
        Op::DeallocatePool { pool } => format!("p {pool}"),
    }
}

/// run.s's `deallocate_pool` before the first allocate: `cmpq %rsi, %rcx`
/// with both null, `je` taken, and nothing else.
fn is_empty_heap_pool_walk(original: &[Executed]) -> bool {
    let null = |e: &Executed| {
        e.all
            .iter()
            .filter(|r| matches!(r.reg, Reg::Rsi | Reg::Rcx))
            .all(|r| r.value == Value::Number(0))
    };
    matches!(
        original,
        [cmp, je] if cmp.slot == Slot::Label { label: "deallocate_pool_loop", index: 0 }
            && null(cmp)
            && je.taken == Some(true)
    )
}

/// Runs the script through both drivers under ptrace
/// ([`Drivers::load`] and [`Drivers::run`]).
///
/// # Errors
/// See [`StepError`].
pub fn run(options: &StepOptions) -> Result<StepOutcome, StepError> {
    Drivers::load(options.original_driver.clone(), options.port_driver.clone())?.run(
        &options.script,
        options.max_steps,
        options.read_headers,
    )
}

/// Whether `reg` holds the return address run.s's `syscall` left in `%rcx`
/// (from that `syscall` to the end of `allocate_move_break`).
fn is_return_address(reg: Reg, site: &pairing::Site, map: &Map) -> bool {
    let before_syscall =
        site.slot == Slot::Unpaired(pairing::ROW_BREAK_MOVE) && site.decoded.text != "syscall";
    reg == Reg::Rcx && site.label == "allocate_move_break" && !before_syscall && map.original
}

/// The role of a register in a label: pointer or number.
fn is_pointer(reg: Reg, site: &pairing::Site) -> bool {
    let (label, slot) = (site.label, site.slot);
    match reg {
        Reg::R10 | Reg::Rdx => false,
        Reg::Rdi => !label.starts_with("deallocate_pool") && label != "deallocate_from_pool",
        // The port's null, and run.s's system call number before its
        // syscall (which returns the new break).
        Reg::Rax if slot == Slot::Unpaired(pairing::ROW_BREAK_MOVE) => {
            site.decoded.text == "syscall"
        }
        Reg::Rax => slot != Slot::Unpaired(pairing::ROW_END_XOR),
        Reg::Rsi | Reg::Rcx | Reg::R8 => true,
    }
}

/// One operation as one side's recording holds it.
#[derive(Default)]
struct Recorded {
    /// The call, from the registers at the entry point.
    call: String,
    /// The recorded instructions.
    executed: Vec<Executed>,
    /// The heap before the walk, when headers were read.
    headers: Option<Headers>,
}

/// Splits a recording into operations and describes each step.
fn operations(recording: &Recording, map: &Map) -> Vec<Recorded> {
    let heap0 = recording.heap0;
    // A null pointer stays 0; any other pointer is an offset from heap0.
    let offset = |value: u64| match value {
        0 => Value::Number(0),
        _ => Value::Offset(i128::from(value) - i128::from(heap0)),
    };
    let mut out: Vec<Recorded> = Vec::new();
    for event in &recording.events {
        match event {
            Event::Operation { entry, args } => {
                let call = match entry {
                    Entry::Allocate => format!("allocate({}, {})", args[0], args[1]),
                    Entry::Deallocate => format!("deallocate({})", offset(args[0])),
                    Entry::DeallocatePool => format!("deallocate_pool({})", args[0]),
                };
                out.push(Recorded {
                    call,
                    ..Recorded::default()
                });
            }
            Event::Headers(headers) => {
                if let Some(last) = out.last_mut() {
                    last.headers = Some(headers.clone());
                }
            }
            Event::Step { address, after } => {
                let Some(site) = map.sites.get(address) else {
                    continue;
                };
                let value = |reg: Reg, written: bool| {
                    let raw = after.values[CONTRACT.iter().position(|&r| r == reg).unwrap_or(0)];
                    RegValue {
                        reg,
                        value: if is_return_address(reg, site, map) {
                            Value::ReturnAddress
                        } else if is_pointer(reg, site) {
                            offset(raw)
                        } else {
                            Value::Number(raw)
                        },
                        written,
                    }
                };
                let decoded = &site.decoded;
                let touched = decoded
                    .touched()
                    .into_iter()
                    .map(|reg| value(reg, decoded.writes.contains(&reg)))
                    .collect();
                let all = CONTRACT.into_iter().map(|reg| value(reg, false)).collect();
                let flags = decoded
                    .flags_read
                    .iter()
                    .map(|&flag| (flag, after.rflags & flag.bit() != 0))
                    .collect();
                let next = after.rip.wrapping_sub(recording.bias);
                let taken = decoded
                    .target
                    .map(|_| next != decoded.address + decoded.length);
                let shown = match &site.target_name {
                    Some(name) => format!("{} {name}", decoded.text),
                    None => decoded.text.clone(),
                };
                let executed = Executed {
                    slot: site.slot,
                    label: site.label,
                    text: decoded.text.clone(),
                    shown,
                    touched,
                    all,
                    flags,
                    taken,
                    source: site.source.clone(),
                };
                match out.last_mut() {
                    Some(last) => last.executed.push(executed),
                    None => out.push(Recorded {
                        call: "(before the first operation)".into(),
                        executed: vec![executed],
                        headers: None,
                    }),
                }
            }
            Event::Signal(_) => {}
        }
    }
    out
}
