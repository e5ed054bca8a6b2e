"""PulseVault's engine: everything that is not UI. Never imports streamlit."""
