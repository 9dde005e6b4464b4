"""Adapters around other libraries' private APIs: one module each, each held by a contract test.

The package uses a handful of things other libraries do not promise to keep. Each is reached
only through the module here that names it, and ``tests/unit/test_compat.py`` checks that the
library still has it in the shape this code relies on, so an upgrade that moves it fails a test
with a message naming it, not a user's run:

- :mod:`.httpx`: which httpx flavour the installed openai SDK uses (``httpx`` or ``httpx2``);
- :mod:`.openai`: the SDK's request loop (its request template, retry rules and typed
  errors) for a Chat Completions body the caller built, without its per-call models;
- :mod:`.aiohttp`: closing a connector from its finalizer;
- :mod:`.asyncio`: chaining a task's outcome into a ``concurrent.futures.Future``;
- :mod:`.diskcache`: diskcache's per-thread SQLite connection, for reading many keys at once;
- :mod:`.langchain_core`: LangChain's beta warning class and a chat model's cache string
  (without langchain-openai, for what must stay light to import);
- :mod:`.langchain`: a chat generation's metadata, the
  ``ChatOpenAI`` methods that convert responses (where the reasoning text is kept), and
  ``ainvoke`` for a call nobody watches (``ChatOpenAIHooks.adirect``).
"""
