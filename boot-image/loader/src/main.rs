//! Sinter's UEFI loader stub: `\EFI\BOOT\BOOTX64.EFI` on the USB stick.
//!
//! It reads the kernel ELF, the cluster and node configs and the payload files
//! from the ESP, finds the ACPI RSDP and the framebuffer, builds the boot page
//! tables (identity map, direct map, kernel image, boot stack), exits boot
//! services and jumps to the kernel with a [`sinter_handoff::Handoff`] record.
//!
//! It must never interpret the configs (the kernel validates them) and never
//! return to the firmware after boot services are gone. Anything it cannot do
//! before that point is reported on the console and returned as an error
//! status, so the firmware can try the next boot option.
#![no_std]
#![no_main]

extern crate alloc;

mod elf;
mod esp;
mod memmap;
mod paging;

use core::arch::asm;
use core::ptr::NonNull;

use sinter_handoff::{Framebuffer, Handoff, PayloadFile, PhysRange, PhysSlice, BOOT_STACK_SIZE, DIRECT_MAP_BASE};
use uefi::boot::{self, AllocateType, MemoryType};
use uefi::prelude::*;
use uefi::println;
use uefi::proto::console::gop::{GraphicsOutput, PixelFormat};
use uefi::table::cfg::ConfigTableEntry;
use zerocopy::IntoBytes;

use crate::paging::{BootPageTables, BOOT_STACK_VIRT_BASE};

/// Failure before boot services end: what went wrong, for the console.
pub struct LoadError(pub alloc::string::String);

macro_rules! load_error {
    ($($arg:tt)*) => { $crate::LoadError(alloc::format!($($arg)*)) };
}
pub(crate) use load_error;

#[entry]
fn main() -> Status {
    if uefi::helpers::init().is_err() {
        return Status::ABORTED;
    }
    println!("sinter-loader: starting");
    match load() {
        Ok(never) => match never {},
        Err(LoadError(why)) => {
            println!("sinter-loader: cannot boot: {why}");
            Status::LOAD_ERROR
        }
    }
}

/// Copies `bytes` into fresh loader pages; returns their physical address.
pub fn place_bytes(bytes: &[u8]) -> Result<u64, LoadError> {
    let pages = bytes.len().div_ceil(4096).max(1);
    // allocate_pages zeroes the pages, so only the bytes need copying.
    let base = allocate_pages(pages)?;
    // SAFETY: `base` is a fresh allocation of `pages` pages, identity mapped by
    // UEFI, large enough for `bytes`, and nothing else refers to it.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), base.as_ptr(), bytes.len()) };
    Ok(base.as_ptr() as u64)
}

/// Zeroed loader pages (LOADER_DATA: reported to the kernel as `Loader`).
pub fn allocate_pages(pages: usize) -> Result<NonNull<u8>, LoadError> {
    let base = boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages)
        .map_err(|e| load_error!("out of memory allocating {pages} pages: {:?}", e.status()))?;
    // SAFETY: the allocation is `pages` pages long and exclusively ours.
    unsafe { core::ptr::write_bytes(base.as_ptr(), 0, pages * 4096) };
    Ok(base)
}

fn find_rsdp() -> u64 {
    uefi::system::with_config_table(|entries| {
        let find = |guid| entries.iter().find(|e| e.guid == guid).map(|e| e.address as u64);
        find(ConfigTableEntry::ACPI2_GUID).or_else(|| find(ConfigTableEntry::ACPI_GUID)).unwrap_or(0)
    })
}

fn find_framebuffer() -> Framebuffer {
    let Ok(handle) = boot::get_handle_for_protocol::<GraphicsOutput>() else {
        return Framebuffer::default();
    };
    let params = boot::OpenProtocolParams { handle, agent: boot::image_handle(), controller: None };
    // SAFETY: GetProtocol does not take ownership, so the console driver keeps
    // working; we only read the mode and the framebuffer address.
    let Ok(mut gop) =
        (unsafe { boot::open_protocol::<GraphicsOutput>(params, boot::OpenProtocolAttributes::GetProtocol) })
    else {
        return Framebuffer::default();
    };
    let info = gop.current_mode_info();
    let (width, height) = info.resolution();
    let pixel_format = match info.pixel_format() {
        PixelFormat::Rgb => 0,
        PixelFormat::Bgr => 1,
        _ => 2,
    };
    let mut fb = gop.frame_buffer();
    Framebuffer {
        base: fb.as_mut_ptr() as u64,
        size: fb.size() as u64,
        width: width as u32,
        height: height as u32,
        stride: info.stride() as u32,
        pixel_format,
    }
}

fn load() -> Result<core::convert::Infallible, LoadError> {
    let files = esp::read_boot_files()?;
    let kernel = elf::load_kernel(&files.kernel_elf)?;
    println!(
        "sinter-loader: kernel {} bytes, entry {:#x}, {} segments at phys {:#x}",
        files.kernel_elf.len(),
        kernel.entry,
        kernel.segments.len(),
        kernel.phys.start
    );

    let mut handoff = Handoff::new();
    handoff.rsdp = find_rsdp();
    handoff.framebuffer = find_framebuffer();
    handoff.cluster_config =
        PhysSlice { addr: place_bytes(&files.cluster_toml)?, count: files.cluster_toml.len() as u64 };
    handoff.node_config = PhysSlice { addr: place_bytes(&files.node_toml)?, count: files.node_toml.len() as u64 };

    let mut table = alloc::vec::Vec::with_capacity(files.payload.len());
    for (name, bytes) in &files.payload {
        let mut entry = PayloadFile::default();
        let len = name.len().min(entry.name.len());
        entry.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        entry.addr = place_bytes(bytes)?;
        entry.len = bytes.len() as u64;
        table.push(entry);
    }
    handoff.payload_files = PhysSlice { addr: place_bytes(table.as_bytes())?, count: table.len() as u64 };
    drop(files);

    let stack_pages = (BOOT_STACK_SIZE / 4096) as usize;
    let stack = allocate_pages(stack_pages)?.as_ptr() as u64;
    handoff.boot_stack = PhysRange { start: stack, end: stack + BOOT_STACK_SIZE };
    handoff.kernel_image = kernel.phys;

    let direct_map_size = memmap::highest_address()?.max(4 << 30);
    let mut tables = BootPageTables::new()?;
    tables.map_identity_and_direct(direct_map_size)?;
    for segment in &kernel.segments {
        tables.map_kernel_range(segment.virt, segment.phys, segment.len, segment.writable, segment.executable)?;
    }
    // One unmapped guard page under the stack.
    tables.map_kernel_range(BOOT_STACK_VIRT_BASE + 4096, stack, BOOT_STACK_SIZE, true, false)?;
    handoff.page_table_root = tables.root();
    handoff.direct_map_size = direct_map_size;

    let regions = memmap::RegionBuffer::allocate()?;
    let handoff_phys = allocate_pages(1)?.as_ptr() as u64;
    println!("sinter-loader: exiting boot services, jumping to the kernel");

    // SAFETY: from here on no boot service is used; everything the kernel
    // needs lives in LOADER_DATA pages, which the firmware leaves alone.
    let final_map = unsafe { boot::exit_boot_services(None) };
    let count = regions.fill(&final_map, kernel.phys);
    handoff.memory_map = PhysSlice { addr: regions.phys(), count: count as u64 };
    handoff.loader_exit_tsc = read_tsc();
    let record = handoff.as_bytes();
    // SAFETY: `handoff_phys` is a zeroed, identity-mapped page of our own and
    // the record is far smaller than a page.
    unsafe { core::ptr::copy_nonoverlapping(record.as_ptr(), handoff_phys as *mut u8, record.len()) };

    let stack_top = BOOT_STACK_VIRT_BASE + 4096 + BOOT_STACK_SIZE;
    // SAFETY: the new tables identity-map this code and map the kernel's
    // entry and stack; the kernel's entry takes the record in rdi and never
    // returns. Interrupts are off so no firmware handler runs on the new tables.
    unsafe { jump_to_kernel(tables.root(), stack_top, kernel.entry, DIRECT_MAP_BASE + handoff_phys) }
}

fn read_tsc() -> u64 {
    // SAFETY: rdtsc has no memory effects and is available on every x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// # Safety
/// `pml4` must map the currently executing code at its identity address and
/// map `entry` and `stack_top - 8` as the kernel expects.
unsafe fn jump_to_kernel(pml4: u64, stack_top: u64, entry: u64, handoff_virt: u64) -> ! {
    // SAFETY: the caller guarantees the mappings; EFER.NXE must be set before
    // the new tables (which use NX) are loaded.
    unsafe {
        asm!(
            "cli",
            "mov ecx, 0xC0000080",
            "rdmsr",
            "or eax, 1 << 11",
            "wrmsr",
            "mov cr3, r8",
            "mov rsp, r9",
            "xor ebp, ebp",
            "push rbp",
            "jmp r10",
            // Fixed registers: rdmsr/wrmsr overwrite rax, rcx and rdx.
            in("r8") pml4,
            in("r9") stack_top,
            in("r10") entry,
            in("rdi") handoff_virt,
            options(noreturn)
        )
    }
}
