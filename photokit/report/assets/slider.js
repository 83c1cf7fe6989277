
(function () {
  var box = document.getElementById('cmp');
  if (!box) return;
  var top = document.getElementById('cmp-after');
  var handle = document.getElementById('cmp-handle');
  var range = document.getElementById('cmp-range');
  var flip = document.getElementById('btn-flip');
  var blink = document.getElementById('btn-blink');
  var state = document.getElementById('cmp-state');
  var timer = null, dragging = false, pos = 50;
  function set(p) {
    p = Math.max(0, Math.min(100, p));
    pos = p;
    top.style.clipPath = 'inset(0 0 0 ' + p.toFixed(2) + '%)';
    handle.style.left = p.toFixed(2) + '%';
    range.value = p;
    box.setAttribute('data-pos', p.toFixed(1));
  }
  function show(which) {  // 'before' | 'after' | 'slider'
    box.setAttribute('data-view', which);
    box.classList.toggle('flipping', which !== 'slider');
    if (which === 'before') top.style.clipPath = 'inset(0 0 0 100%)';
    else if (which === 'after') top.style.clipPath = 'inset(0 0 0 0)';
    else set(pos);
    state.textContent = which === 'slider' ? 'Drag to compare' :
      (which === 'before' ? 'Showing: before' : 'Showing: after');
  }
  function fromPointer(e) {
    var r = box.getBoundingClientRect();
    if (box.getAttribute('data-view') !== 'slider') { stopBlink(); show('slider'); }
    set((e.clientX - r.left) / r.width * 100);
  }
  box.addEventListener('pointerdown', function (e) {
    dragging = true;
    if (box.setPointerCapture) { try { box.setPointerCapture(e.pointerId); } catch (err) {} }
    fromPointer(e); e.preventDefault();
  });
  box.addEventListener('pointermove', function (e) { if (dragging) fromPointer(e); });
  box.addEventListener('pointerup', function () { dragging = false; });
  box.addEventListener('pointercancel', function () { dragging = false; });
  range.addEventListener('input', function () {
    var v = parseFloat(range.value);
    pos = v; stopBlink(); show('slider'); set(v);
  });
  function stopBlink() {
    if (timer) { clearInterval(timer); timer = null; }
    blink.setAttribute('aria-pressed', 'false');
    blink.textContent = 'Blink';
  }
  flip.addEventListener('click', function () {
    stopBlink();
    var v = box.getAttribute('data-view');
    show(v === 'after' ? 'before' : 'after');
    flip.textContent = v === 'after' ? 'Flip to after' : 'Flip to before';
  });
  blink.addEventListener('click', function () {
    if (timer) { stopBlink(); show('slider'); return; }
    blink.setAttribute('aria-pressed', 'true');
    blink.textContent = 'Stop blinking';
    show('before');
    timer = setInterval(function () {
      show(box.getAttribute('data-view') === 'before' ? 'after' : 'before');
    }, 700);
  });
  document.getElementById('btn-slider').addEventListener('click', function () {
    stopBlink(); show('slider'); flip.textContent = 'Flip to after';
  });
  set(50); show('slider');
})();
