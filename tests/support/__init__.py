"""Test scaffolding shared by several test modules."""
