//! x86-64 mechanism: descriptor tables, exceptions, interrupt controllers,
//! time, and bringing the other cores up.
