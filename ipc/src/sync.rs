//! The atomics and cells the rings and the grant table are built from.
//!
//! Under `cfg(loom)` these are loom's model-checked versions; otherwise they
//! are `core`'s. Nothing else in the crate names `core::sync::atomic` or
//! `core::cell::UnsafeCell` for shared state, so loom sees every access.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// Defines a function that is `const` except under loom, whose primitives
/// cannot be built in a const context. Lets rings and tables be `static`s.
macro_rules! loom_const_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[cfg(not(loom))]
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        $(#[$attr])*
        #[cfg(loom)]
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use loom_const_fn;

/// `[expr; N]` for a non-`Copy` element, evaluated once per element.
#[cfg(not(loom))]
macro_rules! repeat_array {
    ($n:expr, $e:expr) => {
        [const { $e }; $n]
    };
}
#[cfg(loom)]
macro_rules! repeat_array {
    ($n:expr, $e:expr) => {
        core::array::from_fn::<_, $n, _>(|_| $e)
    };
}
pub(crate) use repeat_array;

/// Keeps its content on a cache line of its own, so the sender's and the
/// receiver's hot words do not bounce one line between two cores.
#[repr(align(64))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's closure-based access API, so the
/// same ring code compiles against both.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
