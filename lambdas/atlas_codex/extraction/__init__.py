"""The extraction contract, the bottom floor: the request the engine executes
(``request``), what it returns (``result``), and the ``Extractor`` protocol with its
``ExtractionTask`` (``contract``). It imports only the shared values and settings."""
