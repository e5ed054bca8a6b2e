"""Reusable Streamlit UI pieces. Never imports boto3, supabase or cv2."""
