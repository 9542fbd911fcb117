//! The radios as `/dev/rfkill` tells them (linux/rfkill.h): its events, one 8-byte
//! `struct rfkill_event` each (`idx` u32, `type`, `op`, `soft`, `hard` u8), read into the
//! state of every radio; and the event that blocks or unblocks every radio of a type, as
//! `rfkill block bluetooth` writes it. Opening the device queues one ADD per radio there
//! is, so a reader knows them all before the first change.

use std::collections::BTreeMap;

/// The size of the event every kernel sends (newer ones append fields only to readers
/// that ask for them).
pub const EVENT_SIZE: usize = 8;

/// A kind of radio (`enum rfkill_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Radio {
    /// `RFKILL_TYPE_WLAN`.
    Wlan,
    /// `RFKILL_TYPE_BLUETOOTH`.
    Bluetooth,
}

impl Radio {
    fn code(self) -> u8 {
        match self {
            Radio::Wlan => 1,
            Radio::Bluetooth => 2,
        }
    }

    fn from_code(code: u8) -> Option<Radio> {
        match code {
            1 => Some(Radio::Wlan),
            2 => Some(Radio::Bluetooth),
            _ => None,
        }
    }
}

/// What an event says (`enum rfkill_operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A radio appeared (or was there when the device was opened).
    Add,
    /// A radio went.
    Del,
    /// A radio's blocks changed.
    Change,
    /// Every radio of a type (written, not read).
    ChangeAll,
}

/// One event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The radio's index.
    pub idx: u32,
    /// Its kind (none: one DCMO does not manage, as NFC or UWB).
    pub radio: Option<Radio>,
    /// What happened.
    pub op: Op,
    /// Blocked in software (what `rfkill block` and DCMO switch).
    pub soft: bool,
    /// Blocked by a switch or the firmware: software cannot lift it.
    pub hard: bool,
}

impl Event {
    /// Reads an event (none: too short or an operation this kernel should not send).
    pub fn parse(bytes: &[u8]) -> Option<Event> {
        let b = bytes.get(..EVENT_SIZE)?;
        let op = match b[5] {
            0 => Op::Add,
            1 => Op::Del,
            2 => Op::Change,
            3 => Op::ChangeAll,
            _ => return None,
        };
        Some(Event {
            idx: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            radio: Radio::from_code(b[4]),
            op,
            soft: b[6] != 0,
            hard: b[7] != 0,
        })
    }

    /// The event that blocks (or unblocks) every radio of `radio` in software.
    pub fn block_all(radio: Radio, block: bool) -> [u8; EVENT_SIZE] {
        let mut b = [0u8; EVENT_SIZE];
        b[4] = radio.code();
        b[5] = 3; // RFKILL_OP_CHANGE_ALL
        b[6] = u8::from(block);
        b
    }
}

/// One radio's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Its kind.
    pub radio: Radio,
    /// Blocked in software.
    pub soft: bool,
    /// Blocked by a switch.
    pub hard: bool,
}

/// Every radio DCMO manages, by index, as the events so far tell it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Radios(pub BTreeMap<u32, State>);

impl Radios {
    /// Takes in one event.
    pub fn apply(&mut self, e: &Event) {
        let Some(radio) = e.radio else { return };
        match e.op {
            Op::Add | Op::Change => {
                self.0.insert(
                    e.idx,
                    State {
                        radio,
                        soft: e.soft,
                        hard: e.hard,
                    },
                );
            }
            Op::Del => {
                self.0.remove(&e.idx);
            }
            Op::ChangeAll => {}
        }
    }

    /// Whether the machine has a radio of this kind (DCMO's `Attached`).
    pub fn attached(&self, radio: Radio) -> bool {
        self.0.values().any(|s| s.radio == radio)
    }

    /// Whether the kind is on (DCMO's `Enabled`): no radio of it blocked in software.
    /// With no radio at all, what the last switch left is unknown here: on.
    pub fn enabled(&self, radio: Radio) -> bool {
        !self.0.values().any(|s| s.radio == radio && s.soft)
    }

    /// Radios of the kind a switch holds off: Enable cannot turn them on.
    pub fn hard_blocked(&self, radio: Radio) -> bool {
        self.0.values().any(|s| s.radio == radio && s.hard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(idx: u32, kind: u8, op: u8, soft: u8, hard: u8) -> [u8; EVENT_SIZE] {
        let mut b = [0u8; EVENT_SIZE];
        b[..4].copy_from_slice(&idx.to_ne_bytes());
        b[4..].copy_from_slice(&[kind, op, soft, hard]);
        b
    }

    /// A Wi-Fi card, a Bluetooth adapter and an NFC chip appear; Bluetooth is blocked,
    /// then unplugged.
    #[test]
    fn events_make_the_state_of_each_kind() {
        let mut r = Radios::default();
        for bytes in [
            event(0, 1, 0, 0, 0),
            event(1, 2, 0, 0, 0),
            event(2, 8, 0, 1, 0),
        ] {
            r.apply(&Event::parse(&bytes).unwrap());
        }
        assert!(r.attached(Radio::Wlan) && r.attached(Radio::Bluetooth));
        assert!(r.enabled(Radio::Bluetooth));
        assert_eq!(r.0.len(), 2, "NFC is not managed");
        r.apply(&Event::parse(&event(1, 2, 2, 1, 0)).unwrap());
        assert!(!r.enabled(Radio::Bluetooth) && r.enabled(Radio::Wlan));
        r.apply(&Event::parse(&event(1, 2, 1, 1, 0)).unwrap());
        assert!(!r.attached(Radio::Bluetooth));
        assert!(r.enabled(Radio::Bluetooth), "no radio, nothing blocked");
        r.apply(&Event::parse(&event(0, 1, 2, 0, 1)).unwrap());
        assert!(r.hard_blocked(Radio::Wlan) && r.enabled(Radio::Wlan));
    }

    #[test]
    fn bad_events_are_skipped_and_block_all_is_what_rfkill_writes() {
        assert_eq!(Event::parse(&[0u8; 7]), None, "too short");
        assert_eq!(Event::parse(&event(0, 1, 9, 0, 0)), None, "unknown op");
        // A 9-byte event of a newer kernel reads as its first 8.
        let mut long = event(3, 1, 0, 1, 0).to_vec();
        long.push(7);
        assert_eq!(Event::parse(&long).unwrap().idx, 3);
        // `rfkill block bluetooth`: idx 0, type 2, CHANGE_ALL, soft 1.
        assert_eq!(
            Event::block_all(Radio::Bluetooth, true),
            event(0, 2, 3, 1, 0)
        );
        assert_eq!(Event::block_all(Radio::Wlan, false), event(0, 1, 3, 0, 0));
    }
}
