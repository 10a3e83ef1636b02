// Numbers for people: compact figures in summaries, whole grouped numbers in tables.
(function (WM) {
  "use strict";
  const locale = () => (WM.lang() === "zh" ? "zh-CN" : "en-US");

  WM.fmt = {
    // 1234567 -> "1.235M" (en) / "123.5万" (zh)
    compact(value) {
      if (value === null || value === undefined || Number.isNaN(value)) return "—";
      return new Intl.NumberFormat(locale(), {
        notation: "compact", maximumSignificantDigits: 4,
      }).format(value);
    },
    // Whole units with grouping; amounts are whole units or steps already.
    whole(value) {
      if (value === null || value === undefined || Number.isNaN(value)) return "—";
      return new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(value);
    },
    money(value) {
      if (value === null || value === undefined) return "—";
      return "¥" + WM.fmt.compact(value);
    },
    // A quantity in its resource's unit: CNY as money, anything else compact + unit.
    amount(value, unit) {
      if (value === null || value === undefined) return "—";
      if (unit === "CNY") return WM.fmt.money(value);
      return WM.fmt.compact(value) + (unit ? " " + unit : "");
    },
    percent(value, digits) {
      if (value === null || value === undefined || Number.isNaN(value)) return "—";
      return new Intl.NumberFormat(locale(), {
        style: "percent", maximumFractionDigits: digits === undefined ? 1 : digits,
      }).format(value);
    },
    number(value, digits) {
      if (value === null || value === undefined || Number.isNaN(value)) return "—";
      return new Intl.NumberFormat(locale(), {
        maximumFractionDigits: digits === undefined ? 4 : digits,
      }).format(value);
    },
    // Three significant digits, for rates of any size (¥5.90 or 0.000012 per unit).
    sig(value) {
      if (value === null || value === undefined || Number.isNaN(value)) return "—";
      return new Intl.NumberFormat(locale(), { maximumSignificantDigits: 3 }).format(value);
    },
    seconds(value) {
      if (value === null || value === undefined) return "—";
      return WM.fmt.number(value, 1) + " s";
    },
  };

  // Small DOM builder: el("td", {class: "num"}, "text" | Node | [children]).
  WM.el = function (tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    });
    [].concat(children === undefined ? [] : children).forEach((child) => {
      if (child === null || child === undefined) return;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    });
    return node;
  };

  // A table from column definitions [{label, value(row), num}] and rows.
  WM.table = function (columns, rows, attrs) {
    const head = WM.el("thead", {}, WM.el("tr", {},
      columns.map((c) => WM.el("th", { scope: "col", class: c.num ? "num" : null }, c.label))));
    const body = WM.el("tbody", {}, rows.map((row) => WM.el("tr", {},
      columns.map((c) => WM.el("td", { class: c.num ? "num" : null }, c.value(row))))));
    return WM.el("table", attrs || {}, [head, body]);
  };
})(window.WM = window.WM || {});
