//! `step --compare`: the two sides instruction by instruction, and the
//! first difference.

use std::fmt;

use super::{Executed, Operation, StepOutcome};

/// The first difference between the two sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The operation's number.
    pub operation: usize,
    /// The operation's call.
    pub call: String,
    /// 1-based position among the operation's compared instructions.
    pub position: usize,
    /// run.s's instruction there (none if the original stopped earlier).
    pub original: Option<Executed>,
    /// The port's instruction there.
    pub port: Option<Executed>,
    /// What differs.
    pub what: String,
}

/// The verdict of `step --compare`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Every compared instruction agrees.
    Identical {
        /// Instructions compared (pairs).
        instructions: usize,
        /// Operations.
        operations: usize,
    },
    /// The first difference.
    Differs(Box<Difference>),
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Identical {
                instructions,
                operations,
            } => write!(
                f,
                "identical: {instructions} instructions over {operations} operations"
            ),
            Comparison::Differs(d) => {
                writeln!(
                    f,
                    "first difference: op {} {}, compared instruction {} of the operation: {}",
                    d.operation, d.call, d.position, d.what
                )?;
                for (side, executed) in [("run.s", &d.original), ("port ", &d.port)] {
                    match executed {
                        Some(e) => {
                            writeln!(
                                f,
                                "  {side}  {:<20} {:<28} {}",
                                e.label,
                                e.shown,
                                e.effects()
                            )?;
                        }
                        None => writeln!(f, "  {side}  (no more instructions in this operation)")?,
                    }
                }
                for (side, executed) in [("run.s", &d.original), ("port ", &d.port)] {
                    if let Some(e) = executed {
                        writeln!(
                            f,
                            "  {side}  all seven after it (untouched ones not compared): {}",
                            e.all_registers()
                        )?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl StepOutcome {
    /// Compares the two sides instruction by instruction: the run.s
    /// instruction, the registers each one touches, the flags a jump reads,
    /// taken or not. The pairing table's instructions are skipped. A
    /// difference in behaviour is reported first; if there is none, the
    /// first executed instruction whose text differs (a changed jump
    /// condition that never decided differently) is.
    pub fn compare(&self) -> Comparison {
        let mut compared = 0;
        let mut first_text_difference = None;
        for op in &self.operations {
            let original: Vec<&Executed> = op.original.iter().filter(|e| e.compared()).collect();
            let port: Vec<&Executed> = op.port.iter().filter(|e| e.compared()).collect();
            for at in 0..original.len().max(port.len()) {
                let (a, b) = (original.get(at).copied(), port.get(at).copied());
                let what = match (a, b) {
                    (Some(a), Some(b)) => {
                        let what = behaviour_difference(a, b);
                        if what.is_none() && a.text != b.text && first_text_difference.is_none() {
                            let what = "the instruction (same effects here)".to_string();
                            first_text_difference =
                                Some(difference(op, at, Some(a), Some(b), what));
                        }
                        what
                    }
                    (Some(_), None) => Some("the port's walk ended earlier".to_string()),
                    (None, Some(_)) => Some("run.s's walk ended earlier".to_string()),
                    (None, None) => None,
                };
                if let Some(what) = what {
                    return Comparison::Differs(Box::new(difference(op, at, a, b, what)));
                }
                compared += 1;
            }
        }
        if let Some(what) = self.ending_difference() {
            return Comparison::Differs(Box::new(Difference {
                operation: self.operations.len(),
                call: "(the end of the run)".to_string(),
                position: 0,
                original: None,
                port: None,
                what,
            }));
        }
        match first_text_difference {
            Some(difference) => Comparison::Differs(Box::new(difference)),
            None => Comparison::Identical {
                instructions: compared,
                operations: self.operations.len(),
            },
        }
    }

    /// How the two drivers' runs ended differently, if they did: other
    /// operation counts, statuses or signals.
    fn ending_difference(&self) -> Option<String> {
        let (counts, statuses, signals) = (&self.operation_counts, &self.statuses, &self.signals);
        if counts.original != counts.port {
            Some(format!(
                "run.s's driver ran {} operations, the port's {}",
                counts.original, counts.port
            ))
        } else if statuses.original != statuses.port || signals.original != signals.port {
            Some(format!(
                "run.s's driver ended with {} (signals {:?}), the port's with {} (signals {:?})",
                statuses.original, signals.original, statuses.port, signals.port
            ))
        } else {
            None
        }
    }
}

/// What differs in behaviour between two instructions at the same place,
/// if anything: the run.s instruction, registers, flags, taken.
fn behaviour_difference(a: &Executed, b: &Executed) -> Option<String> {
    if a.slot != b.slot {
        return Some("a different run.s instruction".to_string());
    }
    let mut what = Vec::new();
    if a.touched != b.touched {
        what.push("registers");
    }
    // Flags both jumps read (a changed condition may read another set: that
    // is a text difference).
    let flags_differ = a.flags.iter().any(|(flag, set)| {
        b.flags
            .iter()
            .any(|(other, value)| other == flag && value != set)
    });
    if flags_differ {
        what.push("flags");
    }
    if a.taken != b.taken {
        what.push("taken");
    }
    (!what.is_empty()).then(|| what.join(", "))
}

/// The difference at compared instruction `at` (0-based) of `op`.
fn difference(
    op: &Operation,
    at: usize,
    original: Option<&Executed>,
    port: Option<&Executed>,
    what: String,
) -> Difference {
    Difference {
        operation: op.number,
        call: op.call.clone(),
        position: at + 1,
        original: original.cloned(),
        port: port.cloned(),
        what,
    }
}
