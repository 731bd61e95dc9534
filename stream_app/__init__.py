"""stream_app"""
