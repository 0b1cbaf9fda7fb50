//! Symbolizing kernel backtraces on the host. The kernel prints frames as
//! raw addresses (`  frame #1: 0xffffffff80012345`, the format of
//! `sinter_kerncore::backtrace`); the console reader rewrites each such line
//! to `  frame #1: 0xffffffff80012345 sinter_kernel::foo::bar+0x1a (kernel/src/foo.rs:42)`
//! using the kernel ELF's symbol table (function + offset, demangled) and
//! its DWARF line table (file:line), so both the echo and the `ConsoleLog`
//! that tests assert on carry names.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use gimli::{EndianArcSlice, RunTimeEndian};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use sinter_kerncore::backtrace::parse_frame_line;

type LineTable = addr2line::Context<EndianArcSlice<RunTimeEndian>>;

#[derive(Debug, Clone)]
struct Symbol {
    start: u64,
    /// 0 for labels without a size (assembly); they extend to the next symbol.
    size: u64,
    name: String,
}

/// What an address resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Demangled, without the hash suffix.
    pub function: String,
    pub offset: u64,
    /// `file:line`, relative to the workspace when it lies inside it.
    pub location: Option<String>,
}

impl std::fmt::Display for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{:#x}", self.function, self.offset)?;
        if let Some(location) = &self.location {
            write!(f, " ({location})")?;
        }
        Ok(())
    }
}

/// Address → function lookup for one ELF file.
pub struct Symbolizer {
    /// Sorted by `start`.
    symbols: Vec<Symbol>,
    lines: Option<Mutex<LineTable>>,
    strip_prefix: PathBuf,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("symbols", &self.symbols.len())
            .field("lines", &self.lines.is_some())
            .finish()
    }
}

impl Symbolizer {
    /// Reads `elf` (e.g. `Firmware::kernel_elf`).
    pub fn load(elf: &Path) -> Result<Self> {
        let data = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
        Self::from_elf_bytes(&data).with_context(|| format!("reading symbols of {}", elf.display()))
    }

    pub fn from_elf_bytes(data: &[u8]) -> Result<Self> {
        let file = object::File::parse(data).context("not an object file")?;
        let mut symbols: Vec<Symbol> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some(Symbol {
                    start: s.address(),
                    size: s.size(),
                    name: format!("{:#}", rustc_demangle::demangle(name)),
                })
            })
            .collect();
        // Sized symbols first at equal addresses, so a lookup prefers them.
        symbols.sort_by_key(|s| (s.start, s.size == 0));
        symbols.dedup_by_key(|s| s.start);
        let lines = line_table(&file).ok().map(Mutex::new);
        Ok(Self { symbols, lines, strip_prefix: crate::paths::workspace_root() })
    }

    /// The function holding `address`, its offset, and file:line if known.
    pub fn resolve(&self, address: u64) -> Option<Resolved> {
        let index = self.symbols.partition_point(|s| s.start <= address).checked_sub(1)?;
        let symbol = &self.symbols[index];
        let end = match symbol.size {
            0 => self.symbols.get(index + 1).map_or(u64::MAX, |next| next.start),
            size => symbol.start + size,
        };
        if address >= end {
            return None;
        }
        Some(Resolved {
            function: symbol.name.clone(),
            offset: address - symbol.start,
            location: self.location(address),
        })
    }

    /// The source line in the function that holds `address` itself: when
    /// code was inlined there, the line of the outermost call site (the
    /// innermost would name a line inside e.g. `core::ptr`).
    fn location(&self, address: u64) -> Option<String> {
        let lines = self.lines.as_ref()?.lock().unwrap_or_else(|p| p.into_inner());
        let mut frames = lines.find_frames(address).skip_all_loads().ok()?;
        let mut outermost = None;
        while let Ok(Some(frame)) = frames.next() {
            if let Some(location) = frame.location {
                outermost = Some(location);
            }
        }
        let location = match outermost {
            Some(location) => location,
            None => lines.find_location(address).ok()??,
        };
        let file = Path::new(location.file?);
        let file = file.strip_prefix(&self.strip_prefix).unwrap_or(file);
        Some(match location.line {
            Some(line) => format!("{}:{line}", file.display()),
            None => file.display().to_string(),
        })
    }

    /// Rewrites one console line if it is a bare backtrace frame line;
    /// `None` leaves the line as it is. Frames after #0 are return
    /// addresses, so they are looked up one byte back (inside the call).
    pub fn rewrite_line(&self, line: &str) -> Option<String> {
        let (frame, rest) = parse_frame_line(line)?;
        if !rest.is_empty() {
            return None;
        }
        let probe = if frame.index == 0 { frame.address } else { frame.address.checked_sub(1)? };
        let mut resolved = self.resolve(probe)?;
        resolved.offset = frame.address - (probe - resolved.offset);
        Some(format!("{frame} {resolved}"))
    }
}

fn line_table(file: &object::File<'_>) -> Result<LineTable> {
    let endian = if file.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
    let load = |id: gimli::SectionId| -> Result<EndianArcSlice<RunTimeEndian>, gimli::Error> {
        let data =
            file.section_by_name(id.name()).and_then(|s| s.data().ok()).map_or(Cow::Borrowed(&[][..]), Cow::Borrowed);
        Ok(EndianArcSlice::new(Arc::from(&*data), endian))
    };
    let dwarf = gimli::Dwarf::load(load)?;
    Ok(addr2line::Context::from_dwarf(dwarf)?)
}

/// A line rewriter for `console::spawn_reader_rewriting`.
pub fn console_rewriter(symbolizer: Arc<Symbolizer>) -> crate::console::LineRewriter {
    Arc::new(move |line: &str| symbolizer.rewrite_line(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::write::{Object as WriteObject, StandardSegment, Symbol as WriteSymbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolScope};

    /// A relocatable ELF with one .text section of 0x100 bytes and three
    /// functions: a mangled Rust one, a C one, and a size-less label.
    fn small_elf() -> Vec<u8> {
        let mut obj = WriteObject::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
        let text =
            obj.add_section(obj.segment_name(StandardSegment::Text).to_vec(), b".text".to_vec(), SectionKind::Text);
        obj.append_section_data(text, &[0xcc; 0x100], 16);
        for (name, value, size) in [
            ("_ZN13sinter_kernel4arch8selftest16page_fault_inner17h0123456789abcdefE", 0x10, 0x20),
            ("plain_c_function", 0x40, 0x10),
            ("asm_label", 0x80, 0),
        ] {
            obj.add_symbol(WriteSymbol {
                name: name.as_bytes().to_vec(),
                value,
                size,
                kind: SymbolKind::Text,
                scope: SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Section(text),
                flags: SymbolFlags::None,
            });
        }
        obj.write().unwrap()
    }

    #[test]
    fn resolves_sized_and_unsized_symbols() {
        let symbolizer = Symbolizer::from_elf_bytes(&small_elf()).unwrap();
        let page_fault = symbolizer.resolve(0x1a).unwrap();
        assert_eq!(page_fault.function, "sinter_kernel::arch::selftest::page_fault_inner");
        assert_eq!(page_fault.offset, 0xa);
        assert_eq!(symbolizer.resolve(0x40).unwrap().to_string(), "plain_c_function+0x0");
        // Between two sized symbols: nothing.
        assert_eq!(symbolizer.resolve(0x35), None);
        assert_eq!(symbolizer.resolve(0x5), None);
        // A label without size runs to the end.
        assert_eq!(symbolizer.resolve(0xff).unwrap().to_string(), "asm_label+0x7f");
    }

    #[test]
    fn rewrites_only_bare_frame_lines() {
        let symbolizer = Symbolizer::from_elf_bytes(&small_elf()).unwrap();
        assert_eq!(
            symbolizer.rewrite_line("  frame #0: 0x0000000000000010").as_deref(),
            Some("  frame #0: 0x0000000000000010 sinter_kernel::arch::selftest::page_fault_inner+0x0")
        );
        // A return address right after a call at the end of a function
        // belongs to the caller: looked up one byte back, offset kept exact.
        assert_eq!(
            symbolizer.rewrite_line("  frame #2: 0x0000000000000030").as_deref(),
            Some("  frame #2: 0x0000000000000030 sinter_kernel::arch::selftest::page_fault_inner+0x20")
        );
        assert_eq!(symbolizer.rewrite_line("  frame #1: 0x0000000000000010"), None);
        assert_eq!(symbolizer.rewrite_line("  frame #0: 0x0000000000000010 already+0x0"), None);
        assert_eq!(symbolizer.rewrite_line("  rip=0x0000000000000010"), None);
        assert_eq!(symbolizer.rewrite_line("banner: node=0"), None);
    }

    #[test]
    fn rejects_non_elf_input() {
        assert!(Symbolizer::from_elf_bytes(b"not an elf").is_err());
    }

    /// Against the real kernel, when a firmware build is present: its entry
    /// point and a Rust function resolve, with file and line from DWARF.
    #[test]
    fn resolves_the_real_kernel_when_built() {
        let elf = crate::paths::workspace_root().join("target/x86_64-unknown-none/release/sinter-kernel");
        let Ok(data) = std::fs::read(&elf) else {
            eprintln!("skipped: {} not built", elf.display());
            return;
        };
        let symbolizer = Symbolizer::from_elf_bytes(&data).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let entry = file.symbols().find(|s| s.name() == Ok("kernel_entry")).unwrap();
        let resolved = symbolizer.resolve(entry.address() + 4).unwrap();
        assert_eq!(resolved.function, "kernel_entry");
        assert_eq!(resolved.offset, 4);
        let location = resolved.location.expect("the release kernel has line tables (debug = 1)");
        assert!(location.starts_with("kernel/src/main.rs:"), "{location}");
        let dispatch = file
            .symbols()
            .find(|s| s.name().is_ok_and(|n| n.contains("trap8dispatch")))
            .expect("the trap dispatcher is in the kernel");
        // Inlined code (write_volatile) is reported at the line in the
        // function that holds it, not inside `core`.
        let inner = file.symbols().find(|s| s.name().is_ok_and(|n| n.contains("16page_fault_inner"))).unwrap();
        for address in inner.address()..inner.address() + inner.size() {
            let resolved = symbolizer.resolve(address).unwrap();
            assert_eq!(resolved.function, "sinter_kernel::arch::selftest::page_fault_inner");
            let location = resolved.location.unwrap();
            assert!(location.starts_with("kernel/src/arch/selftest.rs:"), "{address:#x}: {location}");
        }
        let line = format!("  frame #0: {:#018x}", dispatch.address());
        let rewritten = symbolizer.rewrite_line(&line).unwrap();
        assert!(rewritten.starts_with(&format!("{line} sinter_kernel::arch::trap::dispatch+0x0 (")), "{rewritten}");
    }
}
