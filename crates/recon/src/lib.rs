//! 对账 — reconciliation, the domain part: what a reconciliation record is,
//! how a pair of records (ours and the channel's) is classified, which error
//! code (差错码) a discrepancy gets and which treatment that code calls for.
//!
//! **Architecture Invariant:** this crate knows nothing of DataFusion, files
//! or storage. `recon-engine` runs the same classification over Arrow
//! batches at scale; [`classify`] here is the reference it is tested
//! against, record by record.

macro_rules! text_enum {
    ($name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text)
            }
        }
    };
}

mod classify;
mod day;
mod discrepancy;
mod internal;
mod record;
mod rules;
mod store;

pub use classify::*;
pub use day::*;
pub use discrepancy::*;
pub use internal::*;
pub use record::*;
pub use rules::*;
pub use store::*;
