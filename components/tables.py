"""Every table of the app goes through :func:`show_table`: one look, and "—" for a missing value."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from lib.units import MISSING


def show_table(frame: pd.DataFrame, **options: Any) -> Any:
    """``st.dataframe`` without the index, full width, and :data:`lib.units.MISSING` where a value is
    missing (Streamlit would write ``None``); ``options`` go to ``st.dataframe`` (key, selection, ...)."""
    options = {"hide_index": True, "width": "stretch", **options}
    return st.dataframe(frame, placeholder=MISSING, **options)
