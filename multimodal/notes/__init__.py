"""Analytics over many notes: their findings in one table (``medany extract``), asked with SQL (``medany cohort``)."""
