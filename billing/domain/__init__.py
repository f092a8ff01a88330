"""The pure core: terms, calendar, state machines, money and ids. No IO, no clock reads."""
