"""Marking codes (Честный знак): each unit's code and its lifecycle in our stock."""
