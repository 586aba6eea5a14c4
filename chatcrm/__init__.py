"""chatcrm: open-channel chats in a CRM, over a local SQLite database."""

__version__ = "0.1.0"
