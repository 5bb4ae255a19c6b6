//! Just enough of an ELF64 little-endian executable for the tracer: the
//! entry point, the `.text` section's bytes and the symbol table.

use std::path::Path;

use super::StepError;

/// A symbol of `.symtab`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The symbol's name.
    pub name: String,
    /// Its link-time address.
    pub address: u64,
}

/// The parts of an executable the tracer reads.
#[derive(Clone, Debug)]
pub struct Executable {
    /// `e_entry`, the link-time entry point (the load bias is the run-time
    /// entry point minus this).
    pub entry: u64,
    /// The link-time address of `.text`.
    pub text_address: u64,
    /// The bytes of `.text`.
    pub text: Vec<u8>,
    /// Every named symbol of `.symtab` (local labels such as run.s's
    /// `allocate_loop` included).
    pub symbols: Vec<Symbol>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn c_string(bytes: &[u8], at: usize) -> Option<&str> {
    let rest = bytes.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// One section header: (name offset, type, address, file offset, size, link).
struct Section {
    name: u32,
    kind: u32,
    address: u64,
    offset: u64,
    size: u64,
    link: u32,
}

impl Section {
    fn bytes<'a>(&self, file: &'a [u8]) -> Option<&'a [u8]> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start.checked_add(usize::try_from(self.size).ok()?)?;
        file.get(start..end)
    }
}

const SHT_SYMTAB: u32 = 2;

impl Executable {
    /// Reads `path`.
    ///
    /// # Errors
    /// [`StepError::Executable`] if the file cannot be read or is not an
    /// x86-64 ELF64 file with `.text` and `.symtab`.
    pub fn read(path: &Path) -> Result<Executable, StepError> {
        let fail = |what: &str| StepError::Executable {
            path: path.to_path_buf(),
            message: what.to_string(),
        };
        let file = std::fs::read(path).map_err(|e| fail(&e.to_string()))?;
        Executable::parse(&file).ok_or_else(|| {
            fail("not an x86-64 ELF64 executable with .text and .symtab (stripped?)")
        })
    }

    fn parse(file: &[u8]) -> Option<Executable> {
        // e_ident: magic, ELFCLASS64, little endian; e_machine EM_X86_64.
        if file.get(..6)? != b"\x7fELF\x02\x01" || u16_at(file, 18)? != 62 {
            return None;
        }
        let entry = u64_at(file, 24)?;
        let section_offset = usize::try_from(u64_at(file, 40)?).ok()?;
        let entry_size = usize::from(u16_at(file, 58)?);
        let count = usize::from(u16_at(file, 60)?);
        let names_index = usize::from(u16_at(file, 62)?);
        let sections: Vec<Section> = (0..count)
            .map(|i| {
                let at = section_offset + i * entry_size;
                Some(Section {
                    name: u32_at(file, at)?,
                    kind: u32_at(file, at + 4)?,
                    address: u64_at(file, at + 16)?,
                    offset: u64_at(file, at + 24)?,
                    size: u64_at(file, at + 32)?,
                    link: u32_at(file, at + 40)?,
                })
            })
            .collect::<Option<_>>()?;
        let names = sections.get(names_index)?.bytes(file)?;
        let text = sections
            .iter()
            .find(|s| c_string(names, s.name as usize) == Some(".text"))?;
        let symtab = sections.iter().find(|s| s.kind == SHT_SYMTAB)?;
        let strtab = sections.get(symtab.link as usize)?.bytes(file)?;
        let symbols = symtab
            .bytes(file)?
            .chunks_exact(24)
            .filter_map(|entry| {
                let name = c_string(strtab, u32_at(entry, 0)? as usize)?;
                let address = u64_at(entry, 8)?;
                (!name.is_empty()).then(|| Symbol {
                    name: name.to_string(),
                    address,
                })
            })
            .collect();
        Some(Executable {
            entry,
            text_address: text.address,
            text: text.bytes(file)?.to_vec(),
            symbols,
        })
    }

    /// The address of the symbol `name` (the first one, if several).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.address)
    }

    /// The bytes of `.text` from `address` to `end`, if both lie in it.
    pub fn code(&self, address: u64, end: u64) -> Option<&[u8]> {
        let start = usize::try_from(address.checked_sub(self.text_address)?).ok()?;
        let end = usize::try_from(end.checked_sub(self.text_address)?).ok()?;
        self.text.get(start..end)
    }
}
