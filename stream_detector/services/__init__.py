"""services room."""
