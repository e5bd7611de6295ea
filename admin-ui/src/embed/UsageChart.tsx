// Burn over time, stacked by feature: one bar per day or week. Amounts stay bigint; only
// each bar's share of the tallest becomes a pixel height.
import type { UsageBucket } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { dateOf, formatAmount, formatDate } from "../format.js";

const palette = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#4b5563"];

export function UsageChart({ buckets, starts, scale, unit }: { buckets: UsageBucket[]; starts: Date[]; scale: number; unit: string }) {
  const features = [...new Set(buckets.map((bucket) => bucket.featureKey || "other"))].sort();
  const totals = starts.map((start) => buckets.filter((bucket) => dateOf(bucket.startTime)?.getTime() === start.getTime()).reduce((sum, bucket) => sum + bucket.credits, 0n));
  const max = totals.reduce((a, b) => (b > a ? b : a), 0n);
  const width = 640;
  const height = 180;
  const barWidth = starts.length === 0 ? 0 : width / starts.length;
  const px = (value: bigint) => (max === 0n ? 0 : Number((value * BigInt(height * 1000)) / max) / 1000);
  const total = totals.reduce((a, b) => a + b, 0n);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height + 20}`} role="img" aria-label={`Credits burned per ${unit}: ${formatAmount(total, scale)} in total`}>
        {starts.map((start, index) => {
          let y = height;
          return (
            <g key={start.toISOString()} data-bucket={start.toISOString().slice(0, 10)} data-total={totals[index].toString()}>
              <title>{`${formatDate(start)}: ${formatAmount(totals[index], scale)}`}</title>
              {features.map((feature, featureIndex) => {
                const value = buckets
                  .filter((bucket) => (bucket.featureKey || "other") === feature && dateOf(bucket.startTime)?.getTime() === start.getTime())
                  .reduce((sum, bucket) => sum + bucket.credits, 0n);
                if (value === 0n) return null;
                const h = px(value);
                y -= h;
                return <rect key={feature} x={index * barWidth + 1} y={y} width={Math.max(barWidth - 2, 1)} height={h} fill={palette[featureIndex % palette.length]} />;
              })}
            </g>
          );
        })}
        <line x1={0} x2={width} y1={height} y2={height} stroke="#9ca3af" />
      </svg>
      <figcaption>
        <ul className="legend">
          {features.map((feature, index) => (
            <li key={feature}>
              <span className="swatch" style={{ background: palette[index % palette.length] }} aria-hidden="true" />
              {feature}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
