/* The dashboard: reads the lake's JSON exports from the server that serves this page
   (`cms-pipeline web`) and draws each view. Numbers are shown as gold holds them:
   amounts with 2 decimals (gold's PMPM and totals are decimal(., 2)), rates as
   percentages with 2 decimals. */
"use strict";

(function () {
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD",
    minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const fmtMoney = (v) => (v === null || v === undefined ? "–" : money.format(v));
  const fmtCount = (v) => (v === null || v === undefined ? "–" : count.format(v));
  const fmtRate = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(2)}%`);
  const shortMoney = (v) => (v === null || v === undefined ? "–"
    : v >= 10000 ? `$${(v / 1000).toFixed(0)}k` : `$${Math.round(v)}`);
  // utilisation rates: gold holds them as decimal(., 2), shown with their 2 decimals
  const per1000 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const fmtPer1000 = (v) => (v === null || v === undefined ? "–" : per1000.format(v));
  const shortPer1000 = (v) => (v === null || v === undefined ? "–"
    : v >= 10000 ? `${(v / 1000).toFixed(0)}k` : `${Math.round(v)}`);

  // measure -> [label, its numerator column, its denominator (months) column, kind]:
  // gold's pmpm_by_state_year carries both, so the table shows how each value is made.
  // "money": an amount per member month; "per1000": a count per 1,000 member months.
  const MEASURES = {
    medicare_paid_pmpm: ["Medicare paid", "medicare_paid_amount", "member_months", "money"],
    claims_pmpm: ["All claim payments", "claims_payment_amount", "member_months", "money"],
    inpatient_pmpm: ["Inpatient payments", "inpatient_payment_amount", "member_months", "money"],
    outpatient_pmpm: ["Outpatient payments", "outpatient_payment_amount", "member_months", "money"],
    carrier_pmpm: ["Carrier payments", "carrier_payment_amount", "member_months", "money"],
    beneficiary_paid_pmpm: ["Beneficiary paid", "beneficiary_paid_amount", "member_months", "money"],
    primary_payer_paid_pmpm: ["Primary payer paid", "primary_payer_paid_amount", "member_months", "money"],
    summary_medicare_pmpm: ["Summary-file Medicare reimbursement", "summary_medicare_total_amount", "member_months", "money"],
    pde_gross_drug_cost_pmpm: ["Part D gross drug cost", "pde_gross_drug_cost_amount", "part_d_member_months", "money"],
    pde_patient_pay_pmpm: ["Part D patient pay", "pde_patient_pay_amount", "part_d_member_months", "money"],
    pde_pmpm: ["Part D payments", "pde_payment_amount", "part_d_member_months", "money"],
    inpatient_admissions_per_1000_mm: ["Inpatient admissions", "inpatient_admission_count", "part_a_member_months", "per1000"],
    inpatient_claims_per_1000_mm: ["Inpatient claims", "inpatient_claim_count", "part_a_member_months", "per1000"],
    inpatient_days_per_1000_mm: ["Inpatient days", "inpatient_days", "part_a_member_months", "per1000"],
    outpatient_claims_per_1000_mm: ["Outpatient claims", "outpatient_claim_count", "part_b_member_months", "per1000"],
    carrier_claims_per_1000_mm: ["Carrier claims", "carrier_claim_count", "part_b_member_months", "per1000"],
    drug_events_per_1000_mm: ["Part D drug events", "pde_claim_count", "part_d_member_months", "per1000"],
  };
  const MONTHS_LABELS = {
    member_months: "Member months (A/B)",
    part_a_member_months: "Part A member months",
    part_b_member_months: "Part B member months",
    part_d_member_months: "Part D member months",
  };
  // how each kind of measure is shown: its numerator, its value, the value in a tile, the
  // words after its name
  const KINDS = {
    money: { total: fmtMoney, value: fmtMoney, short: shortMoney, per: "per member month",
      column: "PMPM", group: "Cost per member per month" },
    per1000: { total: fmtCount, value: fmtPer1000, short: shortPer1000,
      per: "per 1,000 member months", column: "per 1,000 member months",
      group: "Utilisation per 1,000 member months" },
  };

  const $ = (id) => document.getElementById(id);
  const state = { status: null, years: {}, labels: {}, tables: {} };

  function node(tag, attrs, children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") n.textContent = v;
      else n.setAttribute(k, v);
    }
    for (const c of children || []) n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return n;
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error || `${url}: HTTP ${response.status}`);
      error.make = body.make;
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function showError(container, error) {
    const text = error.make ? `${error.message}. Make it with: ` : error.message;
    const p = node("p", { class: "error", role: "status" }, [text]);
    if (error.make) p.appendChild(node("code", { text: error.make }));
    container.replaceChildren(p);
  }

  function fillSelect(select, options, selected) {
    select.replaceChildren(...options.map(([value, label]) => {
      const o = node("option", { value: value, text: label });
      if (String(value) === String(selected)) o.selected = true;
      return o;
    }));
  }

  function header(table, columns) {
    const row = node("tr", {}, columns.map(([label, numeric]) =>
      node("th", { scope: "col", class: numeric ? "num" : "", text: label })));
    table.tHead.replaceChildren(row);
  }

  function cell(text, attrs) {
    return node("td", attrs || {}, [text]);
  }

  // ---- missing exports
  function renderMissing(status) {
    const list = $("missing-list");
    list.replaceChildren(...status.missing.map((m) =>
      node("li", { "data-export": m.export }, [`${m.export}: make it with `, node("code", { text: m.make })])));
    $("missing").hidden = status.missing.length === 0;
    $("source").textContent = `Lake ${status.lake}; exports of gold build ${status.exported_build || "(unknown)"}.`;
  }

  // ---- cost per member per month
  async function loadCosts(status) {
    const years = status.exports.years;
    if (!years.length) {
      showError($("costs-map"), { message: "No year summaries exported",
        make: status.missing.find((m) => m.export === "year summaries")?.make });
      return;
    }
    for (const year of years) {
      state.years[year] = await getJson(`/data/web/years/${encodeURIComponent(year)}.json`);
      for (const row of state.years[year].states) state.labels[row.state_code] = row.state || row.state_code;
    }
    const first = state.years[years[0]].states[0] || {};
    const measures = Object.keys(MEASURES).filter((m) => m in first);
    fillSelect($("costs-year"), years.map((y) => [y, y]), years[years.length - 1]);
    fillMeasures($("costs-measure"), measures, "medicare_paid_pmpm");
    $("costs-year").addEventListener("change", renderCosts);
    $("costs-measure").addEventListener("change", renderCosts);
    renderCosts();
  }

  // the measures in one <optgroup> per kind (cost, then utilisation)
  function fillMeasures(select, measures, selected) {
    select.replaceChildren(...Object.entries(KINDS).map(([kind, k]) =>
      node("optgroup", { label: k.group }, measures.filter((m) => MEASURES[m][3] === kind)
        .map((m) => {
          const o = node("option", { value: m, text: MEASURES[m][0] });
          if (m === selected) o.selected = true;
          return o;
        }))).filter((g) => g.children.length));
  }

  function renderCosts() {
    const year = $("costs-year").value;
    const measure = $("costs-measure").value;
    const rows = state.years[year].states;
    const [name, amount, months, kind] = MEASURES[measure];
    const k = KINDS[kind];
    const items = rows.map((r) => ({
      label: r.state || r.state_code,
      name: `${r.state || r.state_code} (SSA code ${r.state_code})`,
      value: r[measure],
      text: k.value(r[measure]),
      short: k.short(r[measure]),
    }));
    const valued = rows.filter((r) => r[measure] !== null && r[measure] !== undefined);
    const top = valued.slice().sort((a, b) => b[measure] - a[measure])[0];
    window.Charts.tileMap($("costs-map"), items,
      `${name} ${k.per} by state, ${year}`,
      `Tile map of ${rows.length} states, darker is higher.` +
      (top ? ` Highest: ${top.state || top.state_code} at ${k.value(top[measure])}.` : ""));
    $("costs-caption").textContent =
      `${name} ${k.per}, ${year}. Each square is a state; darker is higher. ` +
      "Hover a square for its value; every value is in the table below.";
    $("costs-table-caption").textContent = `Per state, ${year}: ${name} ${k.per}`;
    const table = $("costs-table");
    header(table, [["State", false], ["SSA code", false], ["Beneficiaries", true],
      [MONTHS_LABELS[months], true], [`${name}, total`, true], [`${name} ${k.column}`, true]]);
    table.tBodies[0].replaceChildren(...rows.map((r) => node("tr", { "data-state-code": r.state_code }, [
      node("th", { scope: "row", text: r.state || r.state_code }),
      cell(r.state_code),
      cell(fmtCount(r.beneficiary_count), { class: "num", "data-col": "beneficiary_count" }),
      cell(fmtCount(r[months]), { class: "num", "data-col": months }),
      cell(k.total(r[amount]), { class: "num", "data-col": amount }),
      cell(k.value(r[measure]), { class: "num", "data-col": measure }),
    ])));
  }

  // ---- readmissions
  async function loadReadmissions(status) {
    if (!status.exports.tables.readmission_rates) {
      showError($("readmissions-chart"), { message: "No readmission rates exported",
        make: status.missing.find((m) => m.export === "table readmission_rates")?.make });
      return;
    }
    const rows = (await getJson("/data/web/tables/readmission_rates.json")).rows;
    state.tables.readmission_rates = rows;
    const overall = rows.filter((r) => r.state_code === "ALL" && r.specialty_cohort === "ALL")
      .sort((a, b) => a.discharge_year - b.discharge_year);
    window.Charts.columnChart($("readmissions-chart"), overall.map((r) => ({
      label: String(r.discharge_year), value: r.readmission_rate, text: fmtRate(r.readmission_rate),
    })), "30-day readmission rate by discharge year, all states and cohorts",
    overall.map((r) => `${r.discharge_year}: ${fmtRate(r.readmission_rate)} of ` +
      `${fmtCount(r.index_admission_count)} index admissions`).join("; ") + ".");
    const years = overall.map((r) => r.discharge_year);
    fillSelect($("readmissions-year"), years.map((y) => [y, y]), years[years.length - 1]);
    $("readmissions-year").addEventListener("change", renderReadmissionTables);
    renderReadmissionTables();
  }

  function rateRow(label, r, attrs) {
    return node("tr", attrs, [
      node("th", { scope: "row", text: label }),
      cell(fmtCount(r.index_admission_count), { class: "num", "data-col": "index_admission_count" }),
      cell(fmtCount(r.readmission_count), { class: "num", "data-col": "readmission_count" }),
      cell(fmtRate(r.readmission_rate), { class: "num", "data-col": "readmission_rate" }),
    ]);
  }

  function renderReadmissionTables() {
    const year = Number($("readmissions-year").value);
    const rows = state.tables.readmission_rates.filter((r) => r.discharge_year === year);
    const cohorts = rows.filter((r) => r.state_code === "ALL")
      .sort((a, b) => (a.specialty_cohort === "ALL") - (b.specialty_cohort === "ALL") ||
        String(a.specialty_cohort).localeCompare(String(b.specialty_cohort)));
    $("readmissions-cohorts").tBodies[0].replaceChildren(...cohorts.map((r) =>
      rateRow(r.specialty_cohort === "ALL" ? "All cohorts" : r.specialty_cohort, r,
        { "data-cohort": r.specialty_cohort })));
    const states = rows.filter((r) => r.specialty_cohort === "ALL" && r.state_code !== "ALL")
      .sort((a, b) => String(a.state_code).localeCompare(String(b.state_code)));
    $("readmissions-states").tBodies[0].replaceChildren(...states.map((r) =>
      rateRow(`${state.labels[r.state_code] || r.state_code} (${r.state_code})`, r,
        { "data-state-code": r.state_code })));
  }

  // ---- top codes
  async function loadCodes(status) {
    const kinds = [["top_diagnoses_by_cost", "diagnoses", "icd9_dgns_cd"],
      ["top_procedures_by_cost", "procedures", "icd9_prcdr_cd"]];
    const claimTypes = new Set();
    for (const [table, view] of kinds) {
      if (!status.exports.tables[table]) {
        showError($(`${view}-chart`), { message: `No ${table} exported`,
          make: status.missing.find((m) => m.export === `table ${table}`)?.make });
        continue;
      }
      state.tables[table] = (await getJson(`/data/web/tables/${table}.json`)).rows;
      for (const r of state.tables[table]) claimTypes.add(r.claim_type);
    }
    const types = [...claimTypes].sort();
    fillSelect($("codes-claim-type"), types.map((t) => [t, t]), types.includes("inpatient") ? "inpatient" : types[0]);
    const render = () => kinds.forEach(([table, view, code]) => renderCodes(table, view, code));
    $("codes-claim-type").addEventListener("change", render);
    $("codes-limit").addEventListener("change", render);
    render();
  }

  function renderCodes(table, view, codeColumn) {
    const rows = state.tables[table];
    if (!rows) return;
    const type = $("codes-claim-type").value;
    const limit = Number($("codes-limit").value);
    const top = rows.filter((r) => r.claim_type === type)
      .sort((a, b) => a.cost_rank - b.cost_rank || b.total_payment_amount - a.total_payment_amount)
      .slice(0, limit);
    const describe = (r) => `${r[codeColumn]} ${r.description || "(no CMS description)"}`;
    window.Charts.barChart($(`${view}-chart`), top.map((r) => ({
      label: describe(r), value: r.total_payment_amount, text: fmtMoney(r.total_payment_amount),
    })), `Top ${top.length} principal ${view} of ${type} claims by total payment`,
    top.slice(0, 3).map((r, i) => `${i + 1}. ${describe(r)}: ${fmtMoney(r.total_payment_amount)}`).join("; ") + ".");
    const t = $(`${view}-table`);
    header(t, [["Rank", true], ["Code", false], ["Description", false], ["Claims", true],
      ["Beneficiaries", true], ["Total payment", true], ["Mean payment", true]]);
    t.tBodies[0].replaceChildren(...top.map((r) => node("tr", { "data-code": r[codeColumn] }, [
      cell(String(r.cost_rank ?? ""), { class: "num", "data-col": "cost_rank" }),
      node("th", { scope: "row", "data-col": "code", text: r[codeColumn] }),
      cell(r.description || "(no CMS description)", { "data-col": "description" }),
      cell(fmtCount(r.claim_count), { class: "num", "data-col": "claim_count" }),
      cell(fmtCount(r.beneficiary_count), { class: "num", "data-col": "beneficiary_count" }),
      cell(fmtMoney(r.total_payment_amount), { class: "num", "data-col": "total_payment_amount" }),
      cell(fmtMoney(r.mean_payment_amount), { class: "num", "data-col": "mean_payment_amount" }),
    ])));
  }

  // ---- model scores and cards
  async function loadModels(status) {
    const list = $("models-list");
    if (!status.exports.predictions.length) {
      showError(list, { message: "No model scores exported",
        make: status.missing.find((m) => m.export === "model scores")?.make });
      return;
    }
    list.replaceChildren();
    for (const useCase of status.exports.predictions) {
      const box = node("article", { class: "model", id: `model-${useCase}`, "data-use-case": useCase,
        "aria-labelledby": `model-${useCase}-title` });
      box.appendChild(node("h3", { id: `model-${useCase}-title`, text: useCase }));
      const summary = node("p", { class: "scored" });
      const chart = node("div", { class: "chart", id: `histogram-${useCase}` });
      const model = node("div", { class: "model-card" });
      box.append(summary, node("figure", {}, [chart]), model);
      list.appendChild(box);
      try {
        const s = await getJson(`/api/scores/${encodeURIComponent(useCase)}`);
        summary.replaceChildren(
          node("span", { "data-col": "scored_rows", text: fmtCount(s.scored_rows) }),
          ` rows scored by model version ${s.model_version} at ${s.scored_at} (as of ${s.as_of}); `,
          node("span", { "data-col": "positive_labels", text: fmtCount(s.positive_labels) }),
          " labelled positive; mean score ",
          node("span", { "data-col": "mean_score", text: s.mean_score === null ? "–" : s.mean_score.toFixed(4) }),
          ".");
        window.Charts.histogram(chart, s.histogram,
          `Distribution of the latest ${fmtCount(s.scored_rows)} ${useCase} scores`,
          `Histogram of scores in ${s.histogram.length} bins from 0 to 1; the fullest bin holds ` +
          `${Math.max(...s.histogram.map((b) => b.count))} rows.`);
      } catch (error) {
        showError(chart, error);
      }
      try {
        renderModel(model, await getJson(`/api/models/${encodeURIComponent(useCase)}`));
      } catch (error) {
        showError(model, error);
      }
    }
  }

  function renderModel(container, m) {
    const rows = Object.entries(m.metrics || {}).sort();
    const table = node("table", { "data-use-case": m.use_case }, [
      node("caption", { text: `Champion version ${m.champion ?? "(none)"}: test metrics` +
        (m.test_rows ? ` on ${fmtCount(Number(m.test_rows))} held-out rows` : "") }),
      node("thead", {}, [node("tr", {}, [node("th", { scope: "col", text: "Metric" }),
        node("th", { scope: "col", class: "num", text: "Value" })])]),
      node("tbody", {}, rows.map(([k, v]) => node("tr", { "data-metric": k }, [
        node("th", { scope: "row", text: k.replace(/^test_/, "") }),
        cell(typeof v !== "number" ? String(v) : Number.isInteger(v) ? fmtCount(v) : v.toFixed(4),
          { class: "num" })]))),
    ]);
    const parts = [];
    const card = m.card;
    if (card) {
      if (card.description) parts.push(node("p", { class: "card-description", text: card.description }));
      const leader = card.model && typeof card.model === "object"
        ? Object.entries(card.model).filter(([, v]) => v !== null && typeof v !== "object")
          .map(([k, v]) => `${k} ${v}`).join(", ") : "";
      if (leader) parts.push(node("p", { class: "muted", text: `Model: ${leader}` }));
    }
    parts.push(table);
    if (card) {
      parts.push(node("p", {}, [node("a", { href: card.html, class: "card-link",
        text: `Open the model card of ${m.use_case}, version ${card.version}` })]));
      parts.push(node("iframe", { src: card.html, class: "card-frame",
        title: `Model card of ${m.use_case}, version ${card.version}` }));
    } else {
      parts.push(node("p", { class: "muted", text:
        "No model card for this version (trained before cards were written): " +
        `cms-pipeline train ${m.use_case} writes one.` }));
    }
    container.replaceChildren(...parts);
  }

  // ---- beneficiary lookup
  const PROFILE_FIELDS = [["birth_date", "Born"], ["death_date", "Died"], ["sex", "Sex"],
    ["race", "Race"], ["state", "State"], ["county_code", "County code"],
    ["first_summary_year", "First summary year"], ["last_summary_year", "Last summary year"]];
  const YEAR_COLUMNS = [["beneficiary_year", "Year", "text"], ["age", "Age", "count"],
    ["state", "State", "text"], ["member_months", "Member months", "count"],
    ["chronic_condition_count", "Chronic conditions", "count"],
    ["inpatient_admission_count", "Inpatient admissions", "count"],
    ["inpatient_claim_count", "Inpatient claims", "count"],
    ["outpatient_claim_count", "Outpatient claims", "count"],
    ["carrier_claim_count", "Carrier claims", "count"], ["pde_claim_count", "Drug events", "count"],
    ["medicare_paid_amount", "Medicare paid", "money"],
    ["beneficiary_paid_amount", "Beneficiary paid", "money"],
    ["pde_gross_drug_cost_amount", "Part D gross drug cost", "money"]];

  async function lookup(event) {
    event.preventDefault();
    const result = $("lookup-result");
    const id = $("lookup-id").value.trim();
    if (!id) {
      result.replaceChildren(node("p", { class: "error", text: "Type a DESYNPUF_ID first." }));
      return;
    }
    result.replaceChildren(node("p", { class: "muted", text: `Looking up ${id}…` }));
    let p;
    try {
      p = await getJson(`/api/beneficiary/${encodeURIComponent(id)}`);
    } catch (error) {
      showError(result, error);
      return;
    }
    const years = (p.years || []).slice().sort((a, b) => a.beneficiary_year - b.beneficiary_year);
    const columns = YEAR_COLUMNS.filter(([k]) => years.some((y) => k in y));
    const show = { text: (v) => (v === null || v === undefined ? "–" : String(v)), count: fmtCount, money: fmtMoney };
    const table = node("table", { id: "lookup-years" }, [
      node("caption", { text: `${years.length} summary year(s) of ${p.desynpuf_id}` }),
      node("thead", {}, [node("tr", {}, columns.map(([, label, kind]) =>
        node("th", { scope: "col", class: kind === "text" ? "" : "num", text: label })))]),
      node("tbody", {}, years.map((y) => node("tr", { "data-year": y.beneficiary_year }, columns.map(([k, , kind], i) =>
        i === 0 ? node("th", { scope: "row", "data-col": k, text: show[kind](y[k]) })
          : cell(show[kind](y[k]), { class: kind === "text" ? "" : "num", "data-col": k }))))),
    ]);
    const facts = node("dl", { class: "profile" });
    for (const [k, label] of PROFILE_FIELDS) {
      if (p[k] === null || p[k] === undefined) continue;
      facts.append(node("dt", { text: label }), node("dd", { "data-col": k, text: String(p[k]) }));
    }
    result.replaceChildren(node("h3", { id: "lookup-found", text: `Beneficiary ${p.desynpuf_id}` }), facts,
      node("div", { class: "table-wrap" }, [table]));
  }

  async function main() {
    $("lookup-form").addEventListener("submit", lookup);
    let status;
    try {
      status = await getJson("/api/status");
    } catch (error) {
      showError($("source"), error);
      return;
    }
    state.status = status;
    renderMissing(status);
    const views = [["costs-map", loadCosts], ["readmissions-chart", loadReadmissions],
      ["diagnoses-chart", loadCodes], ["models-list", loadModels]];
    for (const [where, load] of views) {
      try {
        await load(status);
      } catch (error) {
        showError($(where), error);
      }
    }
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", main);
})();
