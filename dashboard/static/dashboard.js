// The dashboard page: stations with their current AQI, a lon/lat map, a station's PM2.5 trend, the latest
// alerts and the pipeline's health, all from the read API of the same server; refreshed every
// data-refresh-seconds. Plotly.js is served by the app (/vendor/plotly.min.js): nothing is fetched elsewhere.
"use strict";

const REFRESH_SECONDS = Number(document.body.dataset.refreshSeconds);
const TREND_HOURS = Number(document.body.dataset.trendHours);
const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
const INDEX_NAMES = { us: "US EPA", eea: "EEA" };
const PLOT_CONFIG = { displaylogo: false, responsive: true };

const state = { index: "us", stations: [], legend: null, selected: null };

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  }
  return response.json();
}

// "2013-03-01T05:00:00Z" <-> milliseconds; Plotly gets "2013-03-01 05:00:00" (UTC, no zone: shown as is)
const ms = (iso) => Date.parse(iso);
const isoZ = (millis) => new Date(millis).toISOString().replace(".000Z", "Z");
const plotTime = (millis) => new Date(millis).toISOString().slice(0, 19).replace("T", " ");
const shortTime = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "—");
const number = (value, digits = 1) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));

function textColour(background) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(background.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#000" : "#fff";
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function colouredCell(text, colour, className) {
  const td = cell(text, className);
  td.style.backgroundColor = colour;
  td.style.color = textColour(colour);
  return td;
}

function showStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

// --- stations and map ------------------------------------------------------------------------

function renderStations() {
  const tbody = document.querySelector("#stations tbody");
  tbody.replaceChildren();
  for (const station of state.stations) {
    const figure = station.current[state.index];
    const row = document.createElement("tr");
    row.dataset.stationId = station.station_id;
    row.classList.toggle("selected", station.station_id === state.selected);
    const aqi = colouredCell(figure.value === null ? "—" : String(figure.value), figure.colour, "aqi");
    aqi.dataset.index = state.index;
    aqi.dataset.value = figure.value === null ? "" : String(figure.value);
    aqi.dataset.category = figure.category || "";
    row.append(
      cell(station.station_name || station.station_id),
      cell(station.city || "—"),
      aqi,
      colouredCell(figure.category || "no data", figure.colour, "category"),
      cell(figure.basis ? `${figure.basis}${figure.pollutant ? " · " + figure.pollutant : ""}` : "—"),
      cell(shortTime(station.latest_hour && station.latest_hour.window_start)),
      cell(number(station.latest_hour && station.latest_hour.pm25_mean), "num"),
    );
    row.addEventListener("click", () => select(station.station_id));
    tbody.append(row);
  }
  document.getElementById("stations-note").textContent =
    `${state.stations.length} stations · ${INDEX_NAMES[state.index]} AQI of the latest hour`;
  const legend = document.getElementById("legend");
  legend.replaceChildren(
    ...state.legend[state.index].map(({ category, colour }) => {
      const span = document.createElement("span");
      span.textContent = category;
      span.style.backgroundColor = colour;
      span.style.color = textColour(colour);
      return span;
    }),
  );
}

function renderMap() {
  const located = state.stations.filter((s) => s.lat !== null && s.lon !== null);
  const trace = {
    type: "scatter",
    mode: "markers",
    x: located.map((s) => s.lon),
    y: located.map((s) => s.lat),
    customdata: located.map((s) => s.station_id),
    text: located.map((s) => {
      const figure = s.current[state.index];
      return `${s.station_name || s.station_id}<br>${INDEX_NAMES[state.index]} ${figure.value ?? "—"}: ${figure.category || "no data"}`;
    }),
    hoverinfo: "text",
    marker: {
      size: located.map((s) => (s.station_id === state.selected ? 16 : 11)),
      color: located.map((s) => s.current[state.index].colour),
      line: { color: "#333", width: 1 },
    },
  };
  const layout = {
    margin: { l: 45, r: 10, t: 10, b: 35 },
    xaxis: { title: { text: "longitude" }, zeroline: false },
    yaxis: { title: { text: "latitude" }, zeroline: false, scaleanchor: "x" },
    showlegend: false,
  };
  const map = document.getElementById("map");
  Plotly.react(map, [trace], layout, PLOT_CONFIG).then(() => {
    if (!map.dataset.clickBound) {
      map.on("plotly_click", (event) => select(event.points[0].customdata));
      map.dataset.clickBound = "1";
    }
  });
}

async function refreshStations() {
  const answer = await getJSON("/api/stations");
  state.stations = answer.stations;
  state.legend = answer.legend;
  if (!state.selected || !state.stations.some((s) => s.station_id === state.selected)) {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("station");
    const withData = state.stations.find((s) => s.latest_hour !== null);
    state.selected = state.stations.some((s) => s.station_id === wanted)
      ? wanted
      : (withData || state.stations[0] || {}).station_id || null;
  }
  renderStations();
  renderMap();
}

// --- the selected station's trend ------------------------------------------------------------

function trendRange(station) {
  // the TREND_HOURS hours ending with the station's latest hour
  const end = ms(station.latest_hour.window_start) + HOUR_MS;
  return { start: end - TREND_HOURS * HOUR_MS, end };
}

async function refreshTrend() {
  const station = state.stations.find((s) => s.station_id === state.selected);
  const trend = document.getElementById("trend");
  document.getElementById("trend-station").textContent = station ? station.station_name || station.station_id : "—";
  if (!station || !station.latest_hour) {
    Plotly.purge(trend);
    trend.dataset.stationId = station ? station.station_id : "";
    document.getElementById("trend-range").textContent = "no hourly aggregates yet";
    return;
  }
  const { start, end } = trendRange(station);
  const id = encodeURIComponent(station.station_id);
  const dayStart = Math.floor(start / DAY_MS) * DAY_MS;
  const dayEnd = Math.floor((end - 1) / DAY_MS) * DAY_MS + DAY_MS;
  const [hourly, daily] = await Promise.all([
    getJSON(`/api/stations/${id}/aggregates?window=1h&start=${isoZ(start)}&end=${isoZ(end)}`),
    getJSON(`/api/stations/${id}/aggregates?window=1d&start=${isoZ(dayStart)}&end=${isoZ(dayEnd)}`),
  ]);
  // one point per hour of the range: an hour without a 1 h row is a gap (null), not a line across it
  const byHour = new Map(hourly.aggregates.map((row) => [ms(row.window_start), row]));
  const hours = [];
  for (let t = start; t < end; t += HOUR_MS) hours.push(t);
  const column = (name) => hours.map((t) => (byHour.has(t) ? byHour.get(t)[name] : null));
  const days = daily.aggregates;
  const dayX = days.map((row) => plotTime(ms(row.window_start)));
  const dayY = days.map((row) => row.pm25_mean);
  if (days.length) {
    dayX.push(plotTime(ms(days[days.length - 1].window_end)));
    dayY.push(dayY[dayY.length - 1]);
  }
  const traces = [
    { name: "PM2.5 hourly mean", type: "scatter", mode: "lines+markers", x: hours.map(plotTime), y: column("pm25_mean"),
      marker: { size: 4 }, line: { color: "#1f77b4", width: 1 } },
    { name: "PM2.5 NowCast", type: "scatter", mode: "lines", x: hours.map(plotTime), y: column("pm25_nowcast"),
      line: { color: "#d62728", width: 2 } },
    { name: "PM2.5 daily mean", type: "scatter", mode: "lines", x: dayX, y: dayY,
      line: { color: "#555", width: 2, dash: "dot", shape: "hv" } },
  ];
  const layout = {
    margin: { l: 50, r: 10, t: 10, b: 40 },
    xaxis: { title: { text: "UTC" }, range: [plotTime(start), plotTime(end)] },
    yaxis: { title: { text: "PM2.5 µg/m³" }, rangemode: "tozero" },
    legend: { orientation: "h", y: 1.12 },
  };
  await Plotly.react(trend, traces, layout, PLOT_CONFIG);
  trend.dataset.stationId = station.station_id;
  trend.dataset.start = isoZ(start);
  trend.dataset.end = isoZ(end);
  document.getElementById("trend-range").textContent =
    `${TREND_HOURS} h to ${shortTime(isoZ(end))} UTC: hourly mean, NowCast, daily mean`;
}

function select(stationId) {
  state.selected = stationId;
  history.replaceState(null, "", `#station=${encodeURIComponent(stationId)}`);
  renderStations();
  renderMap();
  refreshTrend().catch(failed);
}

// --- alerts ----------------------------------------------------------------------------------

function categoryColour(index, category) {
  const entry = (state.legend ? state.legend[index] : []).find((e) => e.category === category);
  return entry ? entry.colour : "#c8c8c8";
}

async function refreshAlerts() {
  const answer = await getJSON("/api/alerts?limit=20");
  const tbody = document.querySelector("#alerts tbody");
  tbody.replaceChildren(
    ...answer.alerts.map((alert) => {
      const row = document.createElement("tr");
      row.dataset.stationId = alert.station_id;
      row.dataset.hour = alert.hour;
      row.dataset.index = alert.aqi_index;
      row.append(
        cell(shortTime(alert.hour)),
        cell(alert.station_id),
        cell(INDEX_NAMES[alert.aqi_index] || alert.aqi_index),
        colouredCell(alert.previous_category || "—", categoryColour(alert.aqi_index, alert.previous_category)),
        colouredCell(alert.category || "—", categoryColour(alert.aqi_index, alert.category), "category"),
        cell(alert.aqi === null ? "—" : String(alert.aqi), "num"),
        cell(alert.pollutant || "—"),
      );
      return row;
    }),
  );
  if (!answer.alerts.length) {
    const row = document.createElement("tr");
    const td = cell("no alerts yet");
    td.colSpan = 7;
    row.append(td);
    tbody.append(row);
  }
}

// --- pipeline health -------------------------------------------------------------------------

function age(seconds) {
  if (seconds === null) return "—";
  if (seconds < 120) return `${Math.round(seconds)} s ago`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function healthItem(text, ok, title) {
  const span = document.createElement("span");
  span.className = `item ${ok ? "ok" : "bad"}`;
  span.textContent = text;
  if (title) span.title = title;
  return span;
}

async function refreshHealth() {
  const health = await getJSON("/api/health");
  const items = [healthItem(health.healthy ? "pipeline healthy" : "pipeline: " + health.problems.length + " problem(s)",
    health.healthy, health.problems.join("\n"))];
  for (const job of health.jobs) {
    for (const query of job.queries) {
      const batch = query.last_batch_id === null ? "no batch"
        : `batch ${query.last_batch_id}${query.batch_from === "metrics" ? "" : " (" + query.batch_from + ")"}`;
      const when = query.last_batch_at === null ? "" : ", " + age(health.at - query.last_batch_at);
      const lag = query.lag === null ? "lag ?" : "lag " + Object.values(query.lag).reduce((a, b) => a + b, 0);
      const item = healthItem(`${query.name}: ${query.state} · ${batch}${when} · ${lag}`, query.state === "running");
      item.dataset.query = query.name;
      items.push(item);
    }
  }
  items.push(healthItem(`kafka ${health.kafka.error ? "not answering" : "ok"}`, !health.kafka.error, health.kafka.error));
  if (health.connector) {
    const state = health.connector.status && health.connector.status.connector
      ? health.connector.status.connector.state : health.connector.error ? "not answering" : "not registered";
    items.push(healthItem(`debezium ${state}`, state === "RUNNING", health.connector.error));
  }
  items.push(healthItem(`prometheus ${health.prometheus.error ? "not answering" : "ok"}`, !health.prometheus.error,
    health.prometheus.error));
  document.getElementById("health").replaceChildren(...items);
}

// --- refresh ---------------------------------------------------------------------------------

function failed(error) {
  showStatus(String(error.message || error), true);
  console.error(error);
}

async function refreshAll() {
  try {
    await refreshStations();
    await Promise.all([refreshTrend(), refreshAlerts()]);
    showStatus(`refreshed ${new Date().toISOString().slice(11, 19)} UTC · every ${REFRESH_SECONDS} s`);
    document.body.dataset.refreshedAt = new Date().toISOString();
  } catch (error) {
    failed(error);
  }
  // the health strip is slower (it asks each job, Kafka, Kafka Connect, Prometheus): it does not hold up the rest
  refreshHealth().catch(failed);
}

for (const input of document.querySelectorAll("#index-switch input")) {
  input.addEventListener("change", () => {
    state.index = input.value;
    renderStations();
    renderMap();
  });
}
refreshAll();
setInterval(refreshAll, REFRESH_SECONDS * 1000);
