//! Loading the kernel ELF: PT_LOAD segments copied into fresh pages.

use alloc::vec::Vec;
use object::elf::{FileHeader64, EM_X86_64, PF_W, PF_X, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian;
use sinter_handoff::{PhysRange, KERNEL_BASE};

use crate::{allocate_pages, load_error, LoadError};

/// A kernel larger than this is surely a wrong file.
const MAX_KERNEL_SPAN: u64 = 64 << 20;

pub struct Segment {
    pub virt: u64,
    pub phys: u64,
    pub len: u64,
    pub writable: bool,
    pub executable: bool,
}

pub struct LoadedKernel {
    pub entry: u64,
    pub phys: PhysRange,
    pub segments: Vec<Segment>,
}

pub fn load_kernel(data: &[u8]) -> Result<LoadedKernel, LoadError> {
    let header = FileHeader64::<LittleEndian>::parse(data).map_err(|e| load_error!("kernel.elf: {e}"))?;
    let endian = header.endian().map_err(|e| load_error!("kernel.elf: {e}"))?;
    if header.e_machine(endian) != EM_X86_64 {
        return Err(load_error!("kernel.elf is not an x86-64 ELF"));
    }
    let headers = header.program_headers(endian, data).map_err(|e| load_error!("kernel.elf: {e}"))?;
    let loads: Vec<_> = headers.iter().filter(|ph| ph.p_type(endian) == PT_LOAD && ph.p_memsz(endian) > 0).collect();
    let low = loads.iter().map(|ph| ph.p_vaddr(endian)).min().ok_or(load_error!("kernel.elf has no PT_LOAD"))?;
    let high = loads.iter().map(|ph| ph.p_vaddr(endian).saturating_add(ph.p_memsz(endian))).max().unwrap_or(low);
    let low = low & !0xfff;
    let high = (high + 0xfff) & !0xfff;
    if low < KERNEL_BASE || high - low > MAX_KERNEL_SPAN {
        return Err(load_error!("kernel.elf segments {low:#x}..{high:#x} are outside the kernel window"));
    }
    let entry = header.e_entry(endian);
    if !(low..high).contains(&entry) {
        return Err(load_error!("kernel.elf entry {entry:#x} is outside its segments"));
    }
    let base = allocate_pages(((high - low) / 4096) as usize)?.as_ptr() as u64;
    let mut segments = Vec::new();
    for ph in loads {
        let vaddr = ph.p_vaddr(endian);
        let bytes = ph.data(endian, data).map_err(|_| load_error!("kernel.elf segment at {vaddr:#x} is truncated"))?;
        if bytes.len() as u64 > ph.p_memsz(endian) {
            return Err(load_error!("kernel.elf segment at {vaddr:#x} has filesz > memsz"));
        }
        let dest = base + (vaddr - low);
        // SAFETY: [dest, dest + filesz) lies inside the zeroed allocation of
        // `high - low` bytes (vaddr..vaddr+memsz is within low..high).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dest as *mut u8, bytes.len()) };
        let page_virt = vaddr & !0xfff;
        let page_end = (vaddr + ph.p_memsz(endian) + 0xfff) & !0xfff;
        let flags = ph.p_flags(endian);
        segments.push(Segment {
            virt: page_virt,
            phys: base + (page_virt - low),
            len: page_end - page_virt,
            writable: flags.contains(PF_W),
            executable: flags.contains(PF_X),
        });
    }
    Ok(LoadedKernel { entry, phys: PhysRange { start: base, end: base + (high - low) }, segments })
}
