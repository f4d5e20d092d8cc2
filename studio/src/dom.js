// Building DOM nodes without HTML strings: text is always text, never markup.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
}

// One Tab stop for a long list of buttons: Tab enters and leaves the list, the arrow keys
// (and Home/End) move within it (the WAI-ARIA roving tabindex pattern).
export function roving(list) {
  const buttons = () => [...list.querySelectorAll("button")];
  list.addEventListener("keydown", (event) => {
    const all = buttons();
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: all.length - 1 }[event.key];
    if (next === undefined || next < 0 || next >= all.length) return;
    event.preventDefault();
    focusOnly(all, all[next]);
  });
  list.addEventListener("focusin", (event) => {
    if (event.target instanceof HTMLButtonElement) focusOnly(buttons(), event.target, false);
  });
}

// Make `target` the list's one tab stop (and focus it unless told not to).
export function focusOnly(all, target, focus = true) {
  for (const b of all) b.tabIndex = b === target ? 0 : -1;
  if (focus) target.focus();
}

export function firstStop(list) {
  const all = [...list.querySelectorAll("button")];
  const current = all.find((b) => b.tabIndex === 0) ?? all[0];
  if (current) focusOnly(all, current, false);
}
