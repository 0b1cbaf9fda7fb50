//! virtio-net through the `virtio-drivers` crate: its raw driver over the
//! modern PCI transport, fed with frames from the hypervisor pool.

use alloc::vec::Vec;
use core::ptr::NonNull;

use sinter_handoff::DIRECT_MAP_BASE;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use super::pci::PortCam;
use super::{check_length, FrameNic, NicError, Received};
use crate::kprintln;
use crate::memory::{self, phys_to_virt};

/// Descriptors per virtqueue.
const QUEUE_SIZE: usize = 64;
const BUFFER_BYTES: usize = 4096;

/// The crate's view of the kernel: DMA memory from the frame allocator,
/// reached through the direct map; BARs through [`memory::map_mmio`].
#[derive(Debug)]
pub struct KernelHal;

// SAFETY: `dma_alloc` returns zeroed, physically contiguous frames owned by
// the caller, whose virtual address is their direct-map alias; `share` maps a
// direct-map address back to its physical address exactly.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let phys = match pages {
            0 | 1 => memory::alloc_frame(),
            2..=512 => memory::alloc_frame_2m(),
            _ => crate::fatal(format_args!("virtio: {pages} contiguous DMA pages requested")),
        };
        let phys = phys.unwrap_or_else(|why| crate::fatal(format_args!("virtio: no DMA memory: {why:?}")));
        let virt = NonNull::new(phys_to_virt(phys) as *mut u8).unwrap_or(NonNull::dangling());
        (phys, virt)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        // Multi-page areas came from a 2 MiB frame; the NIC lives as long as
        // the node, so those are never given back (none are freed today).
        if pages <= 1 && memory::free_frame(paddr).is_err() {
            return -1;
        }
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let virt = memory::map_mmio(paddr, size as u64).unwrap_or_else(|why| {
            crate::fatal(format_args!("virtio: cannot map BAR region {paddr:#x}+{size:#x}: {why:?}"))
        });
        NonNull::new(virt as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let virt = buffer.as_ptr().cast::<u8>() as u64;
        let phys = virt.wrapping_sub(DIRECT_MAP_BASE);
        if virt < DIRECT_MAP_BASE || phys >= memory::direct_map_bytes() {
            // The driver only ever passes its own DMA frames.
            crate::fatal(format_args!("virtio: buffer at {virt:#x} is not in the direct map"));
        }
        phys
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// One 4 KiB DMA frame.
struct DmaBuf {
    phys: u64,
}

impl DmaBuf {
    fn new() -> Result<Self, NicError> {
        Ok(Self { phys: memory::alloc_frame().map_err(|_| NicError::Memory)? })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the frame is ours alone (fresh from the allocator, never
        // freed) and the direct map covers it; while the device owns it the
        // driver does not call this (see `VirtioNic`).
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(self.phys) as *mut u8, BUFFER_BYTES) }
    }
}

pub struct VirtioNic {
    dev: VirtIONetRaw<KernelHal, PciTransport, QUEUE_SIZE>,
    /// Receive buffers the device holds, by token (descriptor index).
    rx: [Option<DmaBuf>; QUEUE_SIZE],
    tx_free: Vec<DmaBuf>,
    /// Transmit buffers the device holds: token, buffer, bytes queued.
    tx_busy: Vec<(u16, DmaBuf, usize)>,
}

impl VirtioNic {
    pub fn open(root: &mut PciRoot<PortCam>, df: DeviceFunction) -> Result<Self, NicError> {
        let transport = PciTransport::new::<KernelHal, _>(root, df).map_err(|e| {
            kprintln!("nic: virtio PCI transport: {e}");
            NicError::NoBar
        })?;
        let dev = VirtIONetRaw::new(transport).map_err(|e| {
            kprintln!("nic: virtio-net init: {e}");
            NicError::Virtio
        })?;
        let mut nic = Self { dev, rx: core::array::from_fn(|_| None), tx_free: Vec::new(), tx_busy: Vec::new() };
        for _ in 0..QUEUE_SIZE {
            let mut buf = DmaBuf::new()?;
            // SAFETY: the buffer stays untouched until the device returns it
            // through `poll_receive` (it is parked in `rx` by its token).
            let token = unsafe { nic.dev.receive_begin(buf.bytes()) }.map_err(|_| NicError::Virtio)?;
            nic.rx[usize::from(token)] = Some(buf);
            nic.tx_free.push(DmaBuf::new()?);
        }
        Ok(nic)
    }

    /// Routes the receive queue's used-buffer notifications to MSI-X table
    /// entry 0 (set up by the caller) and the configuration-change
    /// notification nowhere. Writes the common configuration directly: the
    /// driver crate leaves MSI-X vectors alone. False if the device refused
    /// the vector.
    pub fn route_rx_to_msix_entry0(root: &mut PciRoot<PortCam>, df: DeviceFunction) -> bool {
        const CAP_VENDOR: u8 = 0x09;
        const CFG_TYPE_COMMON: u32 = 1;
        const MSIX_CONFIG: usize = 0x10;
        const QUEUE_SELECT: usize = 0x16;
        const QUEUE_MSIX_VECTOR: usize = 0x1a;
        const NO_VECTOR: u16 = 0xffff;
        const RECEIVE_QUEUE: u16 = 0;
        let cam = PortCam;
        let Some(cap) = root
            .capabilities(df)
            .find(|c| c.id == CAP_VENDOR && (cam.read_word(df, c.offset) >> 24) & 0xff == CFG_TYPE_COMMON)
        else {
            return false;
        };
        let bar = (cam.read_word(df, cap.offset + 4) & 0xff) as u8;
        let offset = u64::from(cam.read_word(df, cap.offset + 8));
        let Some((base, _)) = super::pci::memory_bar(root, df, bar) else { return false };
        let Ok(common) = memory::map_mmio(base + offset, 0x38) else { return false };
        let register = |at: usize| (common as usize + at) as *mut u16;
        let write = |at: usize, value: u16| {
            // SAFETY: `common` maps the device's common configuration
            // structure (its vendor capability names the BAR and offset);
            // `at` is the offset of a 16-bit register in the virtio 1.x
            // layout (< 0x38). Device registers, written volatile.
            unsafe { register(at).write_volatile(value) }
        };
        write(MSIX_CONFIG, NO_VECTOR);
        write(QUEUE_SELECT, RECEIVE_QUEUE);
        write(QUEUE_MSIX_VECTOR, 0);
        // SAFETY: as in `write`.
        unsafe { register(QUEUE_MSIX_VECTOR).read_volatile() == 0 }
    }

    /// Asks the device for used-buffer notifications again (before the nic
    /// sleeps).
    pub fn rearm_interrupt(&mut self) {
        self.dev.enable_interrupts();
    }

    /// Asks the device not to notify while the driver is polling anyway.
    pub fn quiet_interrupt(&mut self) {
        self.dev.disable_interrupts();
    }

    fn reclaim_transmitted(&mut self) {
        while let Some(token) = self.dev.poll_transmit() {
            let Some(at) = self.tx_busy.iter().position(|(t, _, _)| *t == token) else { break };
            let (_, mut buf, len) = self.tx_busy.swap_remove(at);
            // SAFETY: the same buffer and length given to `transmit_begin`
            // for this token.
            let done = unsafe { self.dev.transmit_complete(token, &buf.bytes()[..len]) };
            if done.is_err() {
                kprintln!("nic: virtio transmit {token} did not complete cleanly");
            }
            self.tx_free.push(buf);
        }
    }
}

impl FrameNic for VirtioNic {
    fn mac(&self) -> [u8; 6] {
        self.dev.mac_address()
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        check_length(frame)?;
        self.reclaim_transmitted();
        let mut buf = self.tx_free.pop().ok_or(NicError::TxFull)?;
        let header = match self.dev.fill_buffer_header(buf.bytes()) {
            Ok(header) => header,
            Err(_) => {
                self.tx_free.push(buf);
                return Err(NicError::Virtio);
            }
        };
        let len = header + frame.len();
        buf.bytes()[header..len].copy_from_slice(frame);
        // SAFETY: the buffer is parked in `tx_busy` and not touched until
        // `poll_transmit` returns its token.
        match unsafe { self.dev.transmit_begin(&buf.bytes()[..len]) } {
            Ok(token) => {
                self.tx_busy.push((token, buf, len));
                Ok(())
            }
            Err(_) => {
                self.tx_free.push(buf);
                Err(NicError::TxFull)
            }
        }
    }

    fn receive_into(&mut self, budget: usize, f: &mut dyn FnMut(&mut Received<'_>)) -> usize {
        let mut count = 0;
        for _ in 0..budget {
            let Some(token) = self.dev.poll_receive() else { break };
            let Some(mut buf) = self.rx.get_mut(usize::from(token)).and_then(Option::take) else {
                kprintln!("nic: virtio returned unknown receive token {token}");
                break;
            };
            // SAFETY: `buf` is the buffer given to `receive_begin` for this
            // token.
            match unsafe { self.dev.receive_complete(token, buf.bytes()) } {
                Ok((header, len)) => {
                    f(&mut Received::new(&mut buf.phys, header, len));
                    count += 1;
                }
                Err(_) => kprintln!("nic: virtio receive {token} failed"),
            }
            // SAFETY: as in `open`: parked until the device returns it.
            match unsafe { self.dev.receive_begin(buf.bytes()) } {
                Ok(token) => self.rx[usize::from(token)] = Some(buf),
                Err(_) => kprintln!("nic: virtio could not re-post a receive buffer"),
            }
        }
        count
    }
}
