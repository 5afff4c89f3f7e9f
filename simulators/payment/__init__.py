"""Card payment terminal simulators: Sberbank UPOS (an executable) and nexo Retailer (TCP),
both backed by one device model and ledger (``model``)."""
