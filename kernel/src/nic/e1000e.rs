//! Intel 82574 (e1000e) with legacy descriptors, polled: one ring of 32
//! receive and one of 32 transmit descriptors, each descriptor owning a 4 KiB
//! frame from the hypervisor pool. Interrupts stay masked.

use core::sync::atomic::{fence, Ordering};

use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};

use super::pci::{self, PortCam};
use super::{check_length, FrameNic, NicError, Received};
use crate::arch::time;
use crate::kprintln;
use crate::memory::{self, phys_to_virt};

const RING: usize = 256;
const BUFFER_BYTES: usize = 4096;

// Registers (offsets into BAR 0).
const CTRL: u64 = 0x0000;
const STATUS: u64 = 0x0008;
const EERD: u64 = 0x0014;
const ICR: u64 = 0x00c0;
const IMC: u64 = 0x00d8;
const IMS: u64 = 0x00d0;
/// ICR/IMS: receive timer (a frame was written back).
const INT_RXT0: u32 = 1 << 7;
/// ICR/IMS: receiver overrun (the ring was full).
const INT_RXO: u32 = 1 << 6;
const RCTL: u64 = 0x0100;
const TCTL: u64 = 0x0400;
const TIPG: u64 = 0x0410;
const RDBAL: u64 = 0x2800;
const RDBAH: u64 = 0x2804;
const RDLEN: u64 = 0x2808;
const RDH: u64 = 0x2810;
const RDT: u64 = 0x2818;
const TDBAL: u64 = 0x3800;
const TDBAH: u64 = 0x3804;
const TDLEN: u64 = 0x3808;
const TDH: u64 = 0x3810;
const TDT: u64 = 0x3818;
const MTA: u64 = 0x5200;
const RAL0: u64 = 0x5400;
const RAH0: u64 = 0x5404;

const CTRL_ASDE: u32 = 1 << 5;
const CTRL_SLU: u32 = 1 << 6;
const CTRL_RST: u32 = 1 << 26;
const STATUS_LU: u32 = 1 << 1;
const RAH_AV: u32 = 1 << 31;
const EERD_START: u32 = 1;
const EERD_DONE: u32 = 1 << 1;
const RCTL_EN: u32 = 1 << 1;
const RCTL_BAM: u32 = 1 << 15;
const RCTL_SECRC: u32 = 1 << 26;
const TCTL_EN: u32 = 1 << 1;
const TCTL_PSP: u32 = 1 << 3;
const TCTL_CT: u32 = 0x0f << 4;
const TCTL_COLD: u32 = 0x3f << 12;
const CMD_EOP: u8 = 1 << 0;
const CMD_IFCS: u8 = 1 << 1;
const CMD_RS: u8 = 1 << 3;
const DESC_DD: u8 = 1 << 0;
const RX_EOP: u8 = 1 << 1;

/// Legacy receive descriptor.
#[repr(C)]
#[derive(Clone, Copy)]
struct RxDesc {
    addr: u64,
    length: u16,
    checksum: u16,
    status: u8,
    errors: u8,
    special: u16,
}

/// Legacy transmit descriptor.
#[repr(C)]
#[derive(Clone, Copy)]
struct TxDesc {
    addr: u64,
    length: u16,
    cso: u8,
    cmd: u8,
    status: u8,
    css: u8,
    special: u16,
}

pub struct E1000e {
    regs: u64,
    mac: [u8; 6],
    rx_ring: u64,
    tx_ring: u64,
    rx_bufs: [u64; RING],
    tx_bufs: [u64; RING],
    /// Next receive descriptor the device fills.
    rx_next: usize,
    /// Next transmit descriptor to fill, and oldest not yet reclaimed.
    tx_next: usize,
    tx_clean: usize,
    /// Descriptors completed with an error or without end-of-packet, and
    /// the last one's status and errors bytes.
    rx_dropped: u32,
    pub rx_last_bad: (u8, u8, u16),
}

impl E1000e {
    pub fn open(root: &mut PciRoot<PortCam>, df: DeviceFunction) -> Result<Self, NicError> {
        let (bar, size) = pci::memory_bar(root, df, 0).ok_or(NicError::NoBar)?;
        let regs = memory::map_mmio(bar, size.max(0x20000)).map_err(|_| NicError::Memory)?;
        let frame = || memory::alloc_frame().map_err(|_| NicError::Memory);
        let mut nic = Self {
            regs,
            mac: [0; 6],
            rx_ring: frame()?,
            tx_ring: frame()?,
            rx_bufs: [0; RING],
            tx_bufs: [0; RING],
            rx_next: 0,
            tx_next: 0,
            tx_clean: 0,
            rx_dropped: 0,
            rx_last_bad: (0, 0, 0),
        };
        for i in 0..RING {
            nic.rx_bufs[i] = frame()?;
            nic.tx_bufs[i] = frame()?;
        }
        nic.reset()?;
        nic.mac = nic.read_mac();
        nic.setup_rings();
        // The link comes up once QEMU's (or the PHY's) autonegotiation ends.
        let start = time::rdtsc();
        while nic.read(STATUS) & STATUS_LU == 0 && time::ns_since(start) < 3_000_000_000 {
            core::hint::spin_loop();
        }
        if nic.read(STATUS) & STATUS_LU == 0 {
            kprintln!("nic: e1000e link still down after 3 s; continuing");
        }
        Ok(nic)
    }

    /// Unmasks the receive interrupts (the MSI itself is set up by the
    /// caller).
    pub fn enable_rx_interrupt(&mut self) {
        let _ = self.read(ICR);
        self.write(IMS, INT_RXT0 | INT_RXO);
    }

    /// Clears the interrupt causes (ICR is read-to-clear), so the next
    /// received frame raises a fresh MSI (QEMU's e1000e sends one only for
    /// a cause not already pending), and unmasks them.
    pub fn rearm_interrupt(&mut self) {
        let _ = self.read(ICR);
        self.write(IMS, INT_RXT0 | INT_RXO);
    }

    /// Masks the receive interrupts while the driver is polling anyway.
    pub fn quiet_interrupt(&mut self) {
        self.write(IMC, INT_RXT0 | INT_RXO);
    }

    fn read(&self, reg: u64) -> u32 {
        // SAFETY: `regs` maps the whole register BAR uncached; `reg` is a
        // register offset inside it, 4-byte aligned.
        unsafe { core::ptr::read_volatile((self.regs + reg) as *const u32) }
    }

    fn write(&mut self, reg: u64, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.regs + reg) as *mut u32, value) }
    }

    fn reset(&mut self) -> Result<(), NicError> {
        self.write(IMC, u32::MAX);
        let ctrl = self.read(CTRL);
        self.write(CTRL, ctrl | CTRL_RST);
        time::delay_ns(1_000_000);
        let start = time::rdtsc();
        while self.read(CTRL) & CTRL_RST != 0 {
            if time::ns_since(start) > 100_000_000 {
                return Err(NicError::ResetTimeout);
            }
            core::hint::spin_loop();
        }
        self.write(IMC, u32::MAX);
        let _ = self.read(ICR);
        let ctrl = self.read(CTRL);
        self.write(CTRL, ctrl | CTRL_SLU | CTRL_ASDE);
        Ok(())
    }

    /// RAL0/RAH0 (loaded from the NVM at reset), or the NVM itself if the
    /// receive address is not valid.
    fn read_mac(&mut self) -> [u8; 6] {
        let (low, high) = (self.read(RAL0), self.read(RAH0));
        if high & RAH_AV != 0 {
            let l = low.to_le_bytes();
            let h = high.to_le_bytes();
            return [l[0], l[1], l[2], l[3], h[0], h[1]];
        }
        let mut mac = [0u8; 6];
        for word in 0..3u32 {
            self.write(EERD, (word << 2) | EERD_START);
            let start = time::rdtsc();
            let mut value = self.read(EERD);
            while value & EERD_DONE == 0 && time::ns_since(start) < 10_000_000 {
                value = self.read(EERD);
            }
            let data = ((value >> 16) as u16).to_le_bytes();
            mac[word as usize * 2] = data[0];
            mac[word as usize * 2 + 1] = data[1];
        }
        let l = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let h = u32::from(u16::from_le_bytes([mac[4], mac[5]])) | RAH_AV;
        self.write(RAL0, l);
        self.write(RAH0, h);
        mac
    }

    fn rx_desc(&self, i: usize) -> *mut RxDesc {
        (phys_to_virt(self.rx_ring) as *mut RxDesc).wrapping_add(i)
    }

    fn tx_desc(&self, i: usize) -> *mut TxDesc {
        (phys_to_virt(self.tx_ring) as *mut TxDesc).wrapping_add(i)
    }

    fn setup_rings(&mut self) {
        for i in 0..MTA_ENTRIES {
            self.write(MTA + 4 * i, 0);
        }
        for i in 0..RING {
            let desc = RxDesc { addr: self.rx_bufs[i], length: 0, checksum: 0, status: 0, errors: 0, special: 0 };
            // SAFETY: the ring frame holds RING descriptors and the device
            // does not own any yet (receive is off).
            unsafe { core::ptr::write_volatile(self.rx_desc(i), desc) };
            let desc = TxDesc { addr: self.tx_bufs[i], length: 0, cso: 0, cmd: 0, status: DESC_DD, css: 0, special: 0 };
            // SAFETY: as above, transmit is off.
            unsafe { core::ptr::write_volatile(self.tx_desc(i), desc) };
        }
        fence(Ordering::SeqCst);
        let ring_bytes = (RING * 16) as u32;
        self.write(RDBAL, self.rx_ring as u32);
        self.write(RDBAH, (self.rx_ring >> 32) as u32);
        self.write(RDLEN, ring_bytes);
        self.write(RDH, 0);
        self.write(RDT, (RING - 1) as u32);
        self.write(TDBAL, self.tx_ring as u32);
        self.write(TDBAH, (self.tx_ring >> 32) as u32);
        self.write(TDLEN, ring_bytes);
        self.write(TDH, 0);
        self.write(TDT, 0);
        self.write(TIPG, 0x0060_200a);
        self.write(TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
        // 2048-byte buffers (BSIZE 00), broadcast accepted, CRC stripped.
        self.write(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    }
}

const MTA_ENTRIES: u64 = 128;

// Statistics registers (clear on read).
const MPC: u64 = 0x4010;
const GPRC: u64 = 0x4074;
const GPTC: u64 = 0x4080;
const RNBC: u64 = 0x40a0;

impl E1000e {
    /// The device's receive/transmit counters since the last call: good
    /// frames received, good frames sent, missed, no receive buffer.
    pub fn counters(&self) -> [u32; 5] {
        [self.read(GPRC), self.read(GPTC), self.read(MPC), self.read(RNBC), self.rx_dropped]
    }
}

impl FrameNic for E1000e {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        check_length(frame)?;
        while self.tx_clean != self.tx_next {
            // SAFETY: a descriptor inside the ring; the device writes only its
            // status byte, read volatile here.
            let desc = unsafe { core::ptr::read_volatile(self.tx_desc(self.tx_clean)) };
            if desc.status & DESC_DD == 0 {
                break;
            }
            self.tx_clean = (self.tx_clean + 1) % RING;
        }
        let i = self.tx_next;
        if (i + 1) % RING == self.tx_clean {
            return Err(NicError::TxFull);
        }
        let buf = phys_to_virt(self.tx_bufs[i]) as *mut u8;
        // SAFETY: the buffer frame is this descriptor's alone and the device
        // is done with it (its descriptor was reclaimed or never used);
        // `frame` fits (checked against MAX_FRAME < 4096).
        unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), buf, frame.len()) };
        let desc = TxDesc {
            addr: self.tx_bufs[i],
            length: frame.len() as u16,
            cso: 0,
            cmd: CMD_EOP | CMD_IFCS | CMD_RS,
            status: 0,
            css: 0,
            special: 0,
        };
        // SAFETY: descriptor `i` belongs to software until TDT moves past it.
        unsafe { core::ptr::write_volatile(self.tx_desc(i), desc) };
        fence(Ordering::SeqCst);
        self.tx_next = (i + 1) % RING;
        self.write(TDT, self.tx_next as u32);
        Ok(())
    }

    fn receive_into(&mut self, budget: usize, f: &mut dyn FnMut(&mut Received<'_>)) -> usize {
        let mut count = 0;
        for _ in 0..RING.min(budget) {
            let i = self.rx_next;
            // The status byte first: the device writes it last, so only a
            // read after seeing DD gets the final length (a whole-descriptor
            // read may load the length before the status and race).
            let status = self.rx_desc(i).cast::<u8>().wrapping_add(12);
            // SAFETY: the status byte of a descriptor inside the ring.
            if unsafe { core::ptr::read_volatile(status) } & DESC_DD == 0 {
                break;
            }
            fence(Ordering::SeqCst);
            // SAFETY: a descriptor inside the ring the device has finished.
            let desc = unsafe { core::ptr::read_volatile(self.rx_desc(i)) };
            let len = usize::from(desc.length).min(BUFFER_BYTES);
            if desc.status & RX_EOP != 0 && desc.errors == 0 {
                // The device finished this buffer (DD set) and gets the
                // slot's buffer (this one or a swapped-in one) back only when
                // RDT moves past it below.
                f(&mut Received::new(&mut self.rx_bufs[i], 0, len));
                count += 1;
            } else {
                self.rx_dropped += 1;
                self.rx_last_bad = (desc.status, desc.errors, desc.length);
            }
            let fresh = RxDesc { addr: self.rx_bufs[i], length: 0, checksum: 0, status: 0, errors: 0, special: 0 };
            // SAFETY: descriptor `i` is software's until RDT is written.
            unsafe { core::ptr::write_volatile(self.rx_desc(i), fresh) };
            fence(Ordering::SeqCst);
            self.write(RDT, i as u32);
            self.rx_next = (i + 1) % RING;
        }
        count
    }
}
