//! One list per C enum. cbindgen reads only enums written out literally, so each enum of the
//! ABI is declared once with its numbers, and `c_enum_table!` derives from one list of its
//! variants everything else that needs them: `ALL`, `name()` and `from_u32()`. The `match`es
//! are exhaustive, so a variant added to the enum and not to the list does not compile.

macro_rules! c_enum_table {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The C name, as a static NUL-terminated string.
            #[allow(dead_code)]
            pub(crate) const fn name(self) -> &'static std::ffi::CStr {
                match self {
                    $($ty::$variant => {
                        match std::ffi::CStr::from_bytes_with_nul(
                            concat!(stringify!($variant), "\0").as_bytes(),
                        ) {
                            Ok(name) => name,
                            Err(_) => panic!("a variant name holds a NUL"),
                        }
                    })+
                }
            }

            /// The value numbered `n`, if any.
            #[inline]
            pub(crate) fn from_u32(n: u32) -> Option<$ty> {
                $(if n == $ty::$variant as u32 {
                    return Some($ty::$variant);
                })+
                None
            }
        }
    };
}
pub(crate) use c_enum_table;
