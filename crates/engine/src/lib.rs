//! The payment engine (支付引擎): four levels of orders — trade, payment,
//! instruction, channel order — and refunds, each with an explicit state
//! machine, behind the [`OrderStore`] trait.
//!
//! **Architecture Invariant:** the engine moves money only through the
//! ledger; its own tables hold orders and their states, never balances.

/// Gives an enum its stable text names: `as_str`, `parse` and `ALL`.
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

mod agreement;
mod agreement_service;
mod bonus_steps;
mod clearing;
mod collection_batch;
mod escrow;
mod fee;
mod fee_steps;
mod limits;
mod merchant;
mod notification;
mod order;
mod refund;
mod routing;
mod service;
pub mod status;
mod store;
mod stored_value;

pub use agreement::*;
pub use agreement_service::*;
pub use bonus_steps::BONUS_OWNER;
pub use clearing::*;
pub use collection_batch::*;
pub use escrow::*;
pub use fee::*;
pub use limits::*;
pub use merchant::*;
pub use notification::*;
pub use order::*;
pub use refund::*;
pub use routing::*;
pub use service::*;
pub use status::{
    ChannelOrderStatus, IllegalTransition, InstructionStatus, Level, Move, PaymentFeeStatus,
    PaymentStatus, RefundPartStatus, RefundStatus, Status, TradeStatus,
};
pub use store::*;
pub use stored_value::*;
