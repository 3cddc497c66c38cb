//! What a network generates with (PROTOCOL.md §14): the sampling parameters
//! every rollout must carry, and how far past its configured context a model
//! is run. Miners generate with these values and validators reject rollouts
//! that carry others, so a miner cannot pick a temperature that makes its
//! samples cheaper to produce or easier to score.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::keys::Hotkey;
use crate::params::{MAX_COMPLETION_TOKENS, MAX_PROMPT_TOKENS};
use crate::sampling::{SamplingError, SamplingParams};

/// Default sampling temperature (thousandths): 1.0, the policy's own
/// distribution, which is what GRPO's importance ratios assume.
pub const DEFAULT_TEMPERATURE_MILLI: u16 = 1000;
/// Default completion cap: enough for a worked answer to every problem
/// family at the top difficulty, and one 16-rollout group stays under
/// 400 KiB of commitments.
pub const DEFAULT_MAX_NEW_TOKENS: u32 = 1024;
/// Largest context a network may run a model at (prompt cap plus completion cap).
pub const MAX_CONTEXT_LIMIT: u32 = MAX_PROMPT_TOKENS + MAX_COMPLETION_TOKENS;

/// A network's generation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationParams {
    /// Temperature and completion cap every rollout of the network carries.
    pub temperature_milli: u16,
    pub max_new_tokens: u32,
    /// Positions the model is run at when that is more than the checkpoint's
    /// `max_position_embeddings` (a devnet running a small-context model on
    /// full-size prompts); `None`: the checkpoint's own limit.
    #[serde(default)]
    pub context_limit: Option<u32>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            temperature_milli: DEFAULT_TEMPERATURE_MILLI,
            max_new_tokens: DEFAULT_MAX_NEW_TOKENS,
            context_limit: None,
        }
    }
}

/// Generation parameters outside the protocol's bounds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerationParamsError {
    #[error("sampling parameters: {0}")]
    Sampling(#[from] SamplingError),
    #[error("context limit {limit} is outside 1..={MAX_CONTEXT_LIMIT}")]
    ContextLimit { limit: u32 },
}

impl GenerationParams {
    /// The sampling parameters a rollout records (PROTOCOL.md §8).
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            temperature_milli: self.temperature_milli,
            max_new_tokens: self.max_new_tokens,
        }
    }

    /// Check the protocol bounds.
    pub fn validate(&self) -> Result<(), GenerationParamsError> {
        self.sampling().validate()?;
        if let Some(limit) = self.context_limit {
            if limit == 0 || limit > MAX_CONTEXT_LIMIT {
                return Err(GenerationParamsError::ContextLimit { limit });
            }
        }
        Ok(())
    }
}

/// Object key of a miner's window file (PROTOCOL.md §8):
/// `grail/windows/{hotkey_ss58}-window-{window}.grail`.
pub fn window_object_key(hotkey: &Hotkey, window: u64) -> String {
    format!("grail/windows/{}-window-{window}.grail", hotkey.to_ss58())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    #[test]
    fn defaults_are_valid_and_bounds_are_checked() {
        assert_eq!(GenerationParams::default().validate(), Ok(()));
        let p = GenerationParams {
            context_limit: Some(MAX_CONTEXT_LIMIT + 1),
            ..GenerationParams::default()
        };
        assert!(matches!(
            p.validate(),
            Err(GenerationParamsError::ContextLimit { .. })
        ));
        let p = GenerationParams {
            max_new_tokens: 0,
            ..GenerationParams::default()
        };
        assert!(matches!(
            p.validate(),
            Err(GenerationParamsError::Sampling(_))
        ));
    }

    #[test]
    fn object_key_is_the_documented_layout() {
        let alice = Keypair::dev("alice").unwrap().hotkey();
        assert_eq!(
            window_object_key(&alice, 4_200),
            "grail/windows/5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY-window-4200.grail"
        );
    }
}
