"""One file per screen, run by ``st.navigation``; each has one ``render()`` function."""
