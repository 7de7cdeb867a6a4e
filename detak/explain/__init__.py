"""Grad-CAM, LRP, SHAP, LIME, faithfulness and attribution plots; host only (issue 7)."""
