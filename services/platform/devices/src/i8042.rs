//! A minimal i8042 keyboard controller at ports 0x60 (data) and 0x64
//! (status / command): no keyboard, no mouse, only the pulse-reset command.
//!
//! The FADT says there is no 8042 (`IAPC_BOOT_ARCH` without the 8042
//! flag), so Linux's i8042 driver does not probe. Its reboot path still
//! does: `kb_wait()` polls status until the input buffer is empty (bit 1),
//! then writes 0xFE to port 0x64. Status therefore always reads 0 (input
//! and output buffers empty), the data port reads 0, every other command
//! and data byte is swallowed without an answer (a probing driver times
//! out and finds no controller), and 0xFE (and 0xF0..=0xFF with bit 0
//! clear: "pulse output line 0 = CPU reset") resets the machine.

use crate::pm::PowerEvent;

pub const I8042_DATA_PORT: u16 = 0x60;
pub const I8042_COMMAND_PORT: u16 = 0x64;

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct I8042 {
    /// Commands and data bytes that were swallowed.
    pub ignored: u64,
}

impl I8042 {
    pub fn read_status(&self) -> u8 {
        0
    }

    pub fn read_data(&self) -> u8 {
        0
    }

    pub fn write_data(&mut self, _value: u8) {
        self.ignored += 1;
    }

    pub fn write_command(&mut self, command: u8) -> Option<PowerEvent> {
        if command & 0xF1 == 0xF0 {
            return Some(PowerEvent::Reset);
        }
        self.ignored += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_kbd_reboot() {
        let mut k = I8042::default();
        // kb_wait(): input buffer empty at once.
        assert_eq!(k.read_status() & 0x02, 0);
        assert_eq!(k.write_command(0xFE), Some(PowerEvent::Reset));
    }

    #[test]
    fn other_commands_get_no_answer() {
        let mut k = I8042::default();
        // i8042 CTR read (0x20): output buffer never fills.
        assert_eq!(k.write_command(0x20), None);
        assert_eq!(k.read_status() & 0x01, 0);
        assert_eq!(k.write_command(0xFF), None);
        k.write_data(0xF4);
        assert_eq!(k.ignored, 3);
    }
}
