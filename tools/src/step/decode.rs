//! Decoding with `iced-x86`: AT&T text (its GNU-assembler formatter), and
//! which of run.s's registers and flags an instruction reads or writes.

use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Formatter, GasFormatter, Instruction,
    InstructionInfoFactory, Mnemonic, NumberBase, OpAccess, Register, RflagsBits,
};

/// run.s's register contract, in the order the tracer shows them.
pub const CONTRACT: [Reg; 7] = [
    Reg::R10,
    Reg::Rdx,
    Reg::Rsi,
    Reg::Rcx,
    Reg::Rdi,
    Reg::R8,
    Reg::Rax,
];

/// One register of run.s's contract (`%r10 %rdx %rsi %rcx %rdi %r8 %rax`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reg {
    /// `%r10`: the pool.
    R10,
    /// `%rdx`: the size requested plus the header.
    Rdx,
    /// `%rsi`: the header being examined.
    Rsi,
    /// `%rcx`: `memory_end`.
    Rcx,
    /// `%rdi`: the pointer (`deallocate`) or the pool (`deallocate_pool`).
    Rdi,
    /// `%r8`: the old break, the new block.
    R8,
    /// `%rax`: the return value.
    Rax,
}

impl Reg {
    /// The AT&T name without `%`.
    pub fn name(self) -> &'static str {
        match self {
            Reg::R10 => "r10",
            Reg::Rdx => "rdx",
            Reg::Rsi => "rsi",
            Reg::Rcx => "rcx",
            Reg::Rdi => "rdi",
            Reg::R8 => "r8",
            Reg::Rax => "rax",
        }
    }

    fn of(register: Register) -> Option<Reg> {
        Some(match register.full_register() {
            Register::R10 => Reg::R10,
            Register::RDX => Reg::Rdx,
            Register::RSI => Reg::Rsi,
            Register::RCX => Reg::Rcx,
            Register::RDI => Reg::Rdi,
            Register::R8 => Reg::R8,
            Register::RAX => Reg::Rax,
            _ => return None,
        })
    }
}

/// A flag a conditional jump reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// The carry flag (`jb`: below).
    Cf,
    /// The zero flag (`je`, `jne`: equal).
    Zf,
}

impl Flag {
    /// `CF` or `ZF`.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Cf => "CF",
            Flag::Zf => "ZF",
        }
    }

    /// The flag's bit in `%rflags`.
    pub fn bit(self) -> u64 {
        match self {
            Flag::Cf => 1 << 0,
            Flag::Zf => 1 << 6,
        }
    }
}

/// One decoded instruction.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Its address.
    pub address: u64,
    /// Its length in bytes.
    pub length: u64,
    /// Its mnemonic (a cheap first test when searching code).
    pub mnemonic: Mnemonic,
    /// The AT&T text without a branch target: `cmpq %rsi, %rcx`, `jb`.
    pub text: String,
    /// For a near jump: where it goes.
    pub target: Option<u64>,
    /// Whether it is a conditional jump.
    pub conditional: bool,
    /// Whether it is `ret`.
    pub is_return: bool,
    /// Contract registers it reads (memory operands' bases included).
    pub reads: Vec<Reg>,
    /// Contract registers it writes.
    pub writes: Vec<Reg>,
    /// CF/ZF, for a conditional jump that reads them.
    pub flags_read: Vec<Flag>,
}

impl Decoded {
    /// Registers read or written, in [`CONTRACT`] order.
    pub fn touched(&self) -> Vec<Reg> {
        CONTRACT
            .into_iter()
            .filter(|r| self.reads.contains(r) || self.writes.contains(r))
            .collect()
    }
}

/// The formatter every listing uses: GNU as syntax with size suffixes
/// (`cmpq`, as run.s writes them) and decimal numbers (`$32`, `8(%rsi)`).
fn formatter() -> GasFormatter {
    let mut formatter = GasFormatter::new();
    let options = formatter.options_mut();
    options.set_gas_show_mnemonic_size_suffix(true);
    options.set_space_after_operand_separator(true);
    options.set_number_base(NumberBase::Decimal);
    formatter
}

/// Decodes `bytes`, which start at `address`, to the end (a linear sweep;
/// undecodable bytes become invalid instructions one byte long).
pub fn decode_raw(bytes: &[u8], address: u64) -> Vec<Instruction> {
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let mut out = Vec::with_capacity(bytes.len() / 4);
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        out.push(instruction);
    }
    out
}

/// Describes decoded instructions: text, registers, flags.
pub fn describe_all(instructions: &[Instruction]) -> Vec<Decoded> {
    let mut formatter = formatter();
    let mut info = InstructionInfoFactory::new();
    instructions
        .iter()
        .map(|i| describe(i, &mut formatter, &mut info))
        .collect()
}

/// [`decode_raw`] and [`describe_all`].
pub fn decode(bytes: &[u8], address: u64) -> Vec<Decoded> {
    describe_all(&decode_raw(bytes, address))
}

fn describe(
    instruction: &Instruction,
    formatter: &mut GasFormatter,
    info: &mut InstructionInfoFactory,
) -> Decoded {
    let flow = instruction.flow_control();
    let branch = instruction.is_jcc_short_or_near() || instruction.is_jmp_short_or_near();
    let mut text = String::new();
    if instruction.is_invalid() {
        text.push_str("(bad)");
    } else if branch {
        formatter.format_mnemonic(instruction, &mut text);
    } else {
        formatter.format(instruction, &mut text);
    }
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for used in info.info(instruction).used_registers() {
        let Some(reg) = Reg::of(used.register()) else {
            continue;
        };
        let (read, write) = match used.access() {
            OpAccess::Read | OpAccess::CondRead => (true, false),
            OpAccess::Write | OpAccess::CondWrite => (false, true),
            OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
            _ => (false, false),
        };
        if read && !reads.contains(&reg) {
            reads.push(reg);
        }
        if write && !writes.contains(&reg) {
            writes.push(reg);
        }
    }
    if instruction.mnemonic() == Mnemonic::Syscall {
        // Linux's convention, which the instruction's own operands do not
        // say: the number in %rax, the first argument in %rdi, the result
        // back in %rax.
        for reg in [Reg::Rdi, Reg::Rax] {
            if !reads.contains(&reg) {
                reads.push(reg);
            }
        }
        if !writes.contains(&Reg::Rax) {
            writes.push(Reg::Rax);
        }
    }
    let conditional = flow == FlowControl::ConditionalBranch;
    let flags = instruction.rflags_read();
    let flags_read = if conditional {
        [(Flag::Cf, RflagsBits::CF), (Flag::Zf, RflagsBits::ZF)]
            .into_iter()
            .filter(|&(_, bit)| flags & bit != 0)
            .map(|(flag, _)| flag)
            .collect()
    } else {
        Vec::new()
    };
    Decoded {
        address: instruction.ip(),
        length: instruction.len() as u64,
        mnemonic: instruction.mnemonic(),
        text,
        target: branch.then(|| instruction.near_branch_target()),
        conditional,
        is_return: flow == FlowControl::Return,
        reads,
        writes,
        flags_read,
    }
}
