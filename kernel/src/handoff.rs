//! Reading the loader's hand-off record through the direct map.

use sinter_handoff::{Handoff, HandoffError, MemoryKind, MemoryRegion, PayloadFile, PhysSlice, DIRECT_MAP_BASE};

/// Physical memory the loader mapped for us; every slice read is bounds-checked
/// against it so a corrupt record cannot make the kernel read outside.
pub struct BootInfo {
    record: &'static Handoff,
}

#[derive(Debug)]
pub enum BootInfoError {
    NotInDirectMap,
    Record(HandoffError),
    SliceOutsideMap(&'static str),
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::NotInDirectMap => f.write_str("record address is not in the direct map"),
            BootInfoError::Record(why) => write!(f, "{why:?}"),
            BootInfoError::SliceOutsideMap(what) => write!(f, "the {what} lies outside mapped memory"),
        }
    }
}

pub fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_MAP_BASE + phys
}

impl BootInfo {
    pub fn from_loader(handoff_virt: u64) -> Result<Self, BootInfoError> {
        if handoff_virt < DIRECT_MAP_BASE || !handoff_virt.is_multiple_of(8) {
            return Err(BootInfoError::NotInDirectMap);
        }
        // SAFETY: the loader placed the record in a page of its own, mapped in
        // the direct map, and never frees it; the bytes are only read.
        let bytes = unsafe { core::slice::from_raw_parts(handoff_virt as *const u8, core::mem::size_of::<Handoff>()) };
        let record = Handoff::check(bytes).map_err(BootInfoError::Record)?;
        let info = Self { record };
        for (name, slice, element) in [
            ("memory map", record.memory_map, core::mem::size_of::<MemoryRegion>()),
            ("cluster config", record.cluster_config, 1),
            ("node config", record.node_config, 1),
            ("payload files", record.payload_files, core::mem::size_of::<PayloadFile>()),
        ] {
            let end = slice.count.checked_mul(element as u64).and_then(|len| slice.addr.checked_add(len));
            if end.is_none_or(|end| end > record.direct_map_size) {
                return Err(BootInfoError::SliceOutsideMap(name));
            }
        }
        Ok(info)
    }

    fn slice<T>(&self, slice: PhysSlice) -> &'static [T] {
        if slice.count == 0 {
            return &[];
        }
        // SAFETY: from_loader checked the range lies in the direct map; the
        // loader wrote `count` initialised `T`s there (all our T are plain
        // zerocopy data) and the memory stays reserved as `Loader`.
        unsafe { core::slice::from_raw_parts(phys_to_virt(slice.addr) as *const T, slice.count as usize) }
    }

    pub fn record(&self) -> &'static Handoff {
        self.record
    }

    pub fn rsdp(&self) -> u64 {
        self.record.rsdp
    }

    pub fn memory_map(&self) -> &'static [MemoryRegion] {
        self.slice(self.record.memory_map)
    }

    pub fn cluster_config(&self) -> &'static [u8] {
        self.slice(self.record.cluster_config)
    }

    pub fn node_config(&self) -> &'static [u8] {
        self.slice(self.record.node_config)
    }

    pub fn payload_files(&self) -> impl Iterator<Item = &'static PayloadFile> {
        self.slice::<PayloadFile>(self.record.payload_files).iter()
    }

    /// RAM the kernel may use: free memory plus what the loader's data and
    /// the kernel image occupy.
    pub fn usable_memory_bytes(&self) -> u64 {
        self.memory_map()
            .iter()
            .filter(|r| matches!(r.kind(), Some(MemoryKind::Usable | MemoryKind::Loader | MemoryKind::KernelImage)))
            .map(|r| r.len)
            .sum()
    }
}
