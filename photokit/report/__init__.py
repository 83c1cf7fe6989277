"""Pictures and pages: the self-contained HTML reports (`html`) and the map pictures of
``measure --maps`` (`maps`)."""
